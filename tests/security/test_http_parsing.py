"""The proxy's HTTP parser against malformed and hostile requests, on raw sockets.

Attacks: smuggle request headers in a chunked body's trailers (an `Authorization` the proxy and
the monolith would honour), blow past the head limits through trailers, stall the event loop
with a flood of trailers, route on a fragment the upstream never sees, crash the parser with
an invalid percent-escape.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from .conftest import TIMEOUT, raw_exchange, stack_log

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _status_and_json(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body.strip() else {}


def _chunked(target: str, trailers: bytes, *, body: bytes = b"{}") -> bytes:
    return (
        (
            f"PATCH {target} HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode()
        + b"%x\r\n%s\r\n0\r\n" % (len(body), body)
        + trailers
        + b"\r\n"
    )


def test_chunked_trailers_never_become_request_headers(proxy, admin, customer, restored_table):
    requests.patch(f"{proxy}/_strangler/routes/default", json={"record": 1}, headers=admin,
                   timeout=TIMEOUT)  # fmt: skip
    requests.delete(f"{proxy}/_strangler/recordings", headers=admin, timeout=TIMEOUT)
    # No Authorization header: only a trailer carries the token. Honoured, it would let the
    # request through as the customer.
    trailers = f"Authorization: Bearer {customer.token}\r\nX-Smuggled: yes\r\n".encode()

    status, body = _status_and_json(raw_exchange(proxy, _chunked("/api/users/me/", trailers)))

    assert status == 401, body
    assert body["error"] == "not_authenticated"
    recorded = requests.get(f"{proxy}/_strangler/recordings", headers=admin, timeout=TIMEOUT)
    [line] = [json.loads(text) for text in recorded.text.splitlines()]
    assert line["method"] == "PATCH" and "X-Smuggled" not in line["headers"]
    assert "Authorization" not in line["headers"]


def test_trailers_over_the_head_limit_are_refused_with_431(proxy):
    huge = b"X-Padding: " + b"a" * 200_000 + b"\r\n"

    status, body = _status_and_json(raw_exchange(proxy, _chunked("/api/users/me/", huge)))

    assert status == 431 and body["error"] == "header_too_large"


def test_a_flood_of_trailers_is_refused_and_never_delays_other_clients(proxy):
    flood = b"Connection: x\r\n" * 100_000
    answers: list[bytes] = []
    flooder = threading.Thread(
        target=lambda: answers.append(raw_exchange(proxy, _chunked("/api/users/me/", flood)))
    )
    flooder.start()
    slowest = 0.0
    while True:  # at least once, then as long as the flood goes on
        started = time.monotonic()
        assert requests.get(f"{proxy}/_strangler/healthz", timeout=TIMEOUT).status_code == 200
        slowest = max(slowest, time.monotonic() - started)
        if not flooder.is_alive():
            break
    flooder.join()

    status, body = _status_and_json(answers[0])
    assert status == 431 and body["error"] == "header_too_large"
    assert slowest < 1.0, f"another client waited {slowest:.2f} s"


def test_a_fragment_in_the_request_target_gets_a_400_json_answer(proxy):
    request = b"GET /api/products/#/../_strangler/routes HTTP/1.1\r\nHost: x\r\n\r\n"

    status, body = _status_and_json(raw_exchange(proxy, request))

    assert status == 400 and body["error"] == "bad_request"
    assert "#" in body["detail"]


@pytest.mark.parametrize("target", ["/api/%ff", "/api/users/%zz/", "/api/caf%C3"])
def test_an_invalid_percent_escape_gets_a_400_json_answer_not_a_dropped_connection(
    stack, proxy, target
):
    request = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()

    status, body = _status_and_json(raw_exchange(proxy, request))

    assert status == 400 and body["error"] == "path_refused"
    assert "escape" in body["detail"]
    marker = f"/after-{target.replace('%', '')}"
    requests.get(proxy + marker, timeout=TIMEOUT)
    log = stack_log(stack, until=marker)
    assert "parsing a request failed" not in log and "UnicodeDecodeError" not in log
