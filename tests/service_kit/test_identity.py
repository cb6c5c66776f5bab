"""The signed identity: a JWT bound to a service, a method and a path, for 30 s at most."""

from __future__ import annotations

import time

import jwt
import pytest

from service_kit.identity import (
    MAX_TTL,
    Identity,
    IdentityError,
    identity_keys_parse,
    identity_sign,
    identity_verify,
)

ALICE = Identity(user_id="7", email="alice@example.com", is_staff=True)
KEYS = identity_keys_parse("k1:first-secret-0123456789abcdef-0123")


def sign(keys=KEYS, **overrides) -> str:
    args = {"identity": ALICE, "keys": keys, "audience": "payments", "method": "POST",
            "path": "/api/payments/"} | overrides  # fmt: skip
    return identity_sign(**args)


def verify(header: str, keys=KEYS, **overrides) -> Identity:
    args = {"header": header, "keys": keys, "audience": "payments", "method": "POST",
            "path": "/api/payments/"} | overrides  # fmt: skip
    return identity_verify(**args)


def test_a_signed_identity_is_a_standard_jwt_that_pyjwt_reads_with_every_claim():
    header = sign(path="/api/café/")
    assert jwt.get_unverified_header(header) == {"alg": "HS256", "kid": "k1", "typ": "JWT"}
    claims = jwt.decode(header, "first-secret-0123456789abcdef-0123", algorithms=["HS256"],
                        audience="payments")  # fmt: skip
    assert claims["sub"] == "7" and claims["email"] == "alice@example.com" and claims["staff"]
    assert (claims["htm"], claims["htu"]) == ("POST", "/api/café/")
    assert claims["exp"] - claims["iat"] == MAX_TTL
    assert verify(header, path="/api/café/") == ALICE


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"audience": "monolith"}, "another service"),
        ({"method": "GET"}, "meant for 'POST'"),
        ({"path": "/api/payments/x/refund/"}, "another path"),
    ],
)
def test_an_identity_replayed_to_another_service_method_or_path_is_refused(overrides, why):
    with pytest.raises(IdentityError, match=why):
        verify(sign(), **overrides)


def test_an_identity_lives_at_most_30_seconds_whatever_the_signer_asks():
    header = sign(ttl=3600)
    claims = jwt.decode(header, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 30
    with pytest.raises(IdentityError, match="expired"):
        verify(header, now=time.time() + 31)


def test_a_hand_made_identity_living_longer_than_30_seconds_is_refused():
    now = int(time.time())
    forged = jwt.encode(
        {"sub": "7", "aud": "payments", "htm": "POST", "htu": "/api/payments/", "iat": now,
         "exp": now + 3600}, "first-secret-0123456789abcdef-0123", algorithm="HS256",
        headers={"kid": "k1"},
    )  # fmt: skip
    with pytest.raises(IdentityError, match="longer than 30"):
        verify(forged)


@pytest.mark.parametrize(
    "tampered",
    [
        lambda h: h[:-2] + ("AA" if not h.endswith("AA") else "BB"),  # the signature
        lambda h: h.replace(h.split(".")[1], h.split(".")[1][::-1]),  # the claims
        lambda h: "not-a-token",
        lambda h: jwt.encode({"sub": "7"}, key="", algorithm="none"),  # alg none
    ],
)
def test_a_forged_or_malformed_identity_is_refused(tampered):
    with pytest.raises(IdentityError):
        verify(tampered(sign()))


def test_keys_rotate_the_first_signs_every_one_verifies():
    old = identity_keys_parse("old:secret-one-0123456789abcdef-0123456")
    both = identity_keys_parse(
        "new:secret-two-0123456789abcdef-0123456,old:secret-one-0123456789abcdef-0123456"
    )
    from_old_proxy = sign(keys=old)
    from_new_proxy = sign(keys=both)
    assert jwt.get_unverified_header(from_new_proxy)["kid"] == "new"
    assert verify(from_old_proxy, keys=both) == verify(from_new_proxy, keys=both) == ALICE
    with pytest.raises(IdentityError, match="unknown key id 'new'"):
        verify(from_new_proxy, keys=old)


def test_a_bare_secret_is_the_default_key():
    keys = identity_keys_parse("just-one-secret-0123456789abcdef-01")
    assert keys.signing_kid == "default" and "just-one" not in repr(keys)


@pytest.mark.parametrize(
    ("raw", "why"),
    [("", "no empty entry"), ("a:x,,b:y", "no empty entry"), ("k!:x", "key id"),
     ("k:", "is empty"), (f"k:{'x' * 32},k:{'y' * 32}", "twice"),
     ("k:short-secret", "at least 32")],
)  # fmt: skip
def test_malformed_keys_are_refused_naming_the_entry_never_the_secret(raw, why):
    with pytest.raises(IdentityError, match=why) as caught:
        identity_keys_parse(raw)
    assert "secret-0123" not in str(caught.value)


@pytest.mark.parametrize(
    "identity",
    [ALICE, Identity(user_id="42"), Identity(user_id="9", email='q"uo\\te é@x', is_staff=False)],
)
def test_the_signer_writes_exactly_the_claims_the_verifier_reads(identity):
    from service_kit.identity import CLAIMS, REQUIRED, IdentitySigner, identity_claims

    now = 1_796_680_000
    header = IdentitySigner(KEYS, ttl=20).sign(identity, "payments", "GET", "/api/ä/", now=now)
    claims = jwt.decode(header, "first-secret-0123456789abcdef-0123", algorithms=["HS256"],
                        audience="payments", options={"verify_exp": False})  # fmt: skip
    assert claims == identity_claims(
        identity=identity, audience="payments", method="GET", path="/api/ä/", issued=now, ttl=20
    )
    assert list(claims) == list(CLAIMS) and set(REQUIRED) <= set(claims)
    assert verify(header, method="GET", path="/api/ä/", now=now) == identity


def test_a_key_longer_than_a_block_signs_as_the_standard_says():
    from service_kit.identity import IdentitySigner

    secret = "k2:" + "s" * 100
    header = IdentitySigner(identity_keys_parse(secret)).sign(ALICE, "payments", "POST", "/")
    assert jwt.decode(header, "s" * 100, algorithms=["HS256"], audience="payments")["sub"] == "7"
