"""The `Idempotency-Key` header: reading it, and fingerprinting the request it guards.

A key belongs to one user. The first request with a key stores its answer; a retry with the same
key and the same request gets that answer again, a retry with a different request gets 422.
The rules (what is stored, what happens to concurrent retries) live in `payments.services`.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.crypto import salted_hmac
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

HEADER = "Idempotency-Key"
MAX_LENGTH = 255  # IdempotencyRecord.key


def idempotency_key_from(request: Request) -> str:
    """Return the request's Idempotency-Key, or raise a 400 naming the header."""
    key = request.headers.get(HEADER)
    if key is None or not key.strip():
        raise ValidationError({HEADER: [f"The {HEADER} header is required to pay."]})
    if len(key) > MAX_LENGTH:
        raise ValidationError(
            {HEADER: [f"An {HEADER} has at most {MAX_LENGTH} characters; got {len(key)}."]}
        )
    if not key.isascii() or not key.isprintable():
        raise ValidationError({HEADER: [f"An {HEADER} is printable ASCII."]})
    return key


def request_fingerprint(data: dict[str, Any]) -> str:
    """Return a stable keyed hash of a validated request body: equal bodies, equal fingerprints.

    Keyed with SECRET_KEY: the body holds the card number, and the order id and last four digits
    are stored beside the fingerprint, so a plain hash could be reversed by trying the ~10^6
    card numbers left.
    """
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return salted_hmac("strangler.payments.idempotency", canonical, algorithm="sha256").hexdigest()
