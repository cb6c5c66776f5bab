"""`revocation_publish`: the message every proxy follows to forget a user's cached tokens."""

from __future__ import annotations

import os
import time
import uuid

import pytest
import redis

from service_kit.revocations import DEFAULT_CHANNEL, revocation_channel, revocation_publish

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/7")


@pytest.mark.integration
def test_a_user_revocation_is_published_as_user_id_on_the_configured_channel(settings):
    channel = f"strangler-test:{uuid.uuid4().hex}"
    settings.REDIS_URL = REDIS_URL
    settings.STRANGLER_AUTH_REVOKE_CHANNEL = channel
    client = redis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    try:
        pubsub.get_message(timeout=1.0)  # the subscription's confirmation
        revocation_publish(user_id=42)
        deadline, message = time.monotonic() + 5, None
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
    finally:
        pubsub.close()
        client.close()
    assert message is not None and message["data"] == b"user:42"


def test_without_redis_a_revocation_does_nothing(settings):
    settings.REDIS_URL = ""
    revocation_publish(user_id=42)  # no server to talk to, and no error


def test_an_unreachable_redis_is_logged_never_raised(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    revocation_publish(user_id=42)
    assert "user 42" in caplog.text


def test_the_channel_defaults_to_the_proxy_s_channel(settings):
    settings.STRANGLER_AUTH_REVOKE_CHANNEL = ""
    assert revocation_channel() == DEFAULT_CHANNEL == "strangler:auth:revoked"


@pytest.mark.parametrize("bad", [0, -1, "7", True, None])
def test_a_user_id_that_is_not_a_positive_integer_is_refused(bad):
    with pytest.raises(ValueError, match="positive integer"):
        revocation_publish(user_id=bad)
