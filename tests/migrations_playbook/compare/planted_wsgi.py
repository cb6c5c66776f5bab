"""The monolith with a deliberate behaviour change, for the proof test of `strangler compare`.

Test-only: gunicorn serves ``tests.migrations_playbook.compare.planted_wsgi:application``.
With ``STRANGLER_COMPARE_PLANT=1``, answers under /api/payments/ change in two ways a client
would notice: ``card_last4`` is renamed ``last4`` (in a payment and in each item of a list), and
a declined card is a 400 instead of a 402. Without it, the wrapper passes everything through.
"""

from __future__ import annotations

import json
import os

from monolith.wsgi import application as monolith_application

PLANTED = os.environ.get("STRANGLER_COMPARE_PLANT") == "1"
PREFIX = "/api/payments/"


def _renamed(document):
    if not isinstance(document, dict):
        return document
    document = {("last4" if key == "card_last4" else key): v for key, v in document.items()}
    if isinstance(document.get("results"), list):
        document["results"] = [_renamed(item) for item in document["results"]]
    return document


def application(environ, start_response):
    """Serve the monolith; with the plant on, change its payments answers."""
    if not PLANTED or not environ.get("PATH_INFO", "").startswith(PREFIX):
        return monolith_application(environ, start_response)
    captured = {}
    chunks: list[bytes] = []

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return chunks.append

    result = monolith_application(environ, capture)
    try:
        chunks.extend(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    status, headers, body = captured["status"], captured["headers"], b"".join(chunks)
    if status.startswith("402"):
        status = "400 Bad Request"
    content_type = dict((k.lower(), v) for k, v in headers).get("content-type", "")
    if content_type.startswith("application/json") and body:
        body = json.dumps(_renamed(json.loads(body))).encode()
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]
