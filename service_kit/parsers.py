"""A JSON parser that refuses oversized bodies with 413, as Django does for forms.

DRF reads a JSON body straight from the request stream, which skips Django's
`DATA_UPLOAD_MAX_MEMORY_SIZE` check (it lives in `HttpRequest.body` and the form parsers).
Without this parser a client could make a view parse a body of any size.

* Limit: `settings.DATA_UPLOAD_MAX_MEMORY_SIZE` bytes (None disables it, as in Django).
* Refusal: raises `django.core.exceptions.RequestDataTooBig`, which
  `service_kit.errors.api_exception_handler` answers with 413 `payload_too_large`.
* Nesting: a body nested too deep for the json module (`[[[[...]]]]`) is a 400 ParseError,
  where DRF's parser would let the RecursionError through as a 500.
"""

from __future__ import annotations

import io

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class BoundedJSONParser(JSONParser):
    """Parse a JSON body no larger than DATA_UPLOAD_MAX_MEMORY_SIZE."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        if limit is not None and request is not None:
            meta = request.META
            try:
                length = int(meta.get("CONTENT_LENGTH") or meta.get("HTTP_CONTENT_LENGTH") or 0)
            except (TypeError, ValueError):
                length = 0
            if length > limit:
                raise RequestDataTooBig(
                    f"Request body exceeds {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE); "
                    f"it was {length} bytes."
                )
            # A body without an honest Content-Length is read at most one byte past the limit.
            body = stream.read(limit + 1) if stream is not None else b""
            if len(body) > limit:
                raise RequestDataTooBig(
                    f"Request body exceeds {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."
                )
            stream = io.BytesIO(body)
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
