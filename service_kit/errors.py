"""The JSON error contract shared by every half, and the one place errors are translated.

Every error response has the same body::

    {"error": "<code>", "detail": "<human sentence>", "fields": {"<field>": ["<why>"]}}

``fields`` is present only for validation errors (400) and names each bad field.

The domain exception tree, raised by service functions and translated here once:

    DomainError                      (400 unless a subclass says otherwise)
    ├── NotFound                     404: an id that does not exist, or is not yours
    ├── PermissionDenied             403
    ├── Conflict                     409: e.g. an illegal state transition
    │   └── InvalidTransition        409: names both states
    ├── IdempotencyMismatch          422: same Idempotency-Key, different request
    ├── RateLimited                  429: too many attempts; carries Retry-After (seconds)
    └── UpstreamUnavailable          503/504: a dependency (payment provider) failed
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class DomainError(Exception):
    """A business rule refused the request."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid_request"

    def __init__(self, detail: str, *, code: str | None = None, fields: dict | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.fields = fields

    def as_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "detail": self.detail}
        if self.fields:
            body["fields"] = self.fields
        return body


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class PermissionDenied(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "permission_denied"


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"

    def __init__(self, entity: str, current: str, target: str):
        super().__init__(
            f"Cannot move {entity} from '{current}' to '{target}'.",
        )
        self.current = current
        self.target = target

    def as_body(self) -> dict[str, Any]:
        return super().as_body() | {"from": self.current, "to": self.target}


class IdempotencyMismatch(DomainError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "idempotency_key_reused"


class RateLimited(DomainError):
    """Too many attempts (e.g. logins): answered 429 with `Retry-After: <retry_after>`."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "throttled"

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class UpstreamUnavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "upstream_unavailable"


_DRF_CODES = {
    drf_exceptions.ValidationError: "validation_error",
    drf_exceptions.ParseError: "malformed_request",
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "throttled",
}


def _drf_code(exc: drf_exceptions.APIException) -> str:
    for klass, code in _DRF_CODES.items():
        if isinstance(exc, klass):
            return code
    return getattr(exc, "default_code", "error")


def _first_message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        return _first_message(next(iter(detail.values())))
    return str(detail)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Turn domain and DRF exceptions into the JSON error contract (DRF's EXCEPTION_HANDLER)."""
    if isinstance(exc, DomainError):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        return Response(exc.as_body(), status=exc.status_code, headers=headers)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"error": "payload_too_large", "detail": str(exc) or "Request body too large."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, SuspiciousOperation):
        return Response(
            {"error": "bad_request", "detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, drf_exceptions.APIException):
        return response
    code = _drf_code(exc)
    if isinstance(exc, drf_exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            fields = {key: _flatten(value) for key, value in detail.items()}
            non_field = fields.pop("non_field_errors", None)
            body: dict[str, Any] = {
                "error": code,
                "detail": non_field[0] if non_field else "Invalid input.",
            }
            if fields:
                body["fields"] = fields
        else:
            body = {"error": code, "detail": _first_message(detail)}
    else:
        body = {"error": code, "detail": _first_message(exc.detail)}
    response.data = body
    return response


def _flatten(value: Any) -> Any:
    """Keep nested field errors (line items) but turn ErrorDetail into plain strings."""
    if isinstance(value, dict):
        return {key: _flatten(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_flatten(item) for item in value]
    return str(value)


def json_error_view(status_code: int, code: str, detail: str):
    """Build a Django handler (handler404, handler500...) that answers in the JSON contract."""

    def view(request, exception=None):
        return JsonResponse({"error": code, "detail": detail}, status=status_code)

    view.__name__ = f"json_{status_code}"
    return view


handler400 = json_error_view(400, "bad_request", "The request could not be understood.")
handler403 = json_error_view(403, "permission_denied", "You may not do this.")
handler404 = json_error_view(404, "not_found", "No such resource.")
handler500 = json_error_view(500, "server_error", "The server failed; the error was logged.")
