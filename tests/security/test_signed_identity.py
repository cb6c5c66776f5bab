"""The identity the proxy signs for a half is good for that half, method and path only, 30 s.

Attacks, as someone who got hold of one `X-Strangler-Identity` header (a log line, a half that
forwards headers, a compromised half) and can reach the halves on their private network: replay
it to another service, with another method, on another path, or later; or send a header of
their own through the proxy.
"""

from __future__ import annotations

import time

import pytest
import requests

from service_kit.identity import HEADER, Identity, identity_keys_parse, identity_sign

from .conftest import TIMEOUT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def keys(stack):
    """The identity keys the runner generated (an insider's: the var dir), to forge what the
    proxy would have signed."""
    return identity_keys_parse((stack.var_dir / "identity-secret").read_text())


def _as_proxy_would(keys, customer, *, audience="payments", method="GET",
                    path="/api/payments/", now=None) -> str:  # fmt: skip
    return identity_sign(
        identity=Identity(user_id=str(customer.id), email=customer.email), keys=keys,
        audience=audience, method=method, path=path, now=now,
    )  # fmt: skip


def test_the_proxy_signs_a_working_identity_for_the_payments_service(proxy, customer):
    answer = requests.get(f"{proxy}/api/payments/", headers=customer.auth, timeout=TIMEOUT)

    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Strangler-Upstream"] == "payments"


def test_a_genuine_identity_is_accepted_where_it_was_meant_to_go(stack, keys, customer):
    payments = stack.urls["payments"]
    header = _as_proxy_would(keys, customer)

    answer = requests.get(f"{payments}/api/payments/", headers={HEADER: header}, timeout=TIMEOUT)

    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("signed_for", "why"),
    [
        ({"audience": "monolith"}, "another service"),
        ({"method": "POST"}, "meant for 'POST'"),
        ({"path": "/api/payments/00000000-0000-4000-8000-000000000000/"}, "another path"),
        ({"now": time.time() - 31}, "expired"),
    ],
)
def test_an_identity_header_replayed_to_another_service_method_path_or_later_is_refused(
    stack, keys, customer, signed_for, why
):
    payments = stack.urls["payments"]
    header = _as_proxy_would(keys, customer, **signed_for)

    answer = requests.get(f"{payments}/api/payments/", headers={HEADER: header}, timeout=TIMEOUT)

    assert answer.status_code == 401
    assert answer.json()["error"] == "authentication_failed"
    assert why in answer.json()["detail"]


def test_an_identity_header_sent_by_a_client_never_passes_the_proxy(proxy, keys, customer):
    forged = _as_proxy_would(keys, customer)  # even a genuine one: only the proxy signs

    answer = requests.get(f"{proxy}/api/payments/", headers={HEADER: forged}, timeout=TIMEOUT)

    assert answer.status_code == 401
