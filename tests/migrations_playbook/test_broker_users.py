"""Per-half broker users of `strangler up` (migrations_playbook/broker_users.py)."""

from __future__ import annotations

import re
import stat

import pytest

from migrations_playbook import broker_users
from migrations_playbook.broker_users import (
    BrokerUsersError,
    broker_users_ensure,
    half_consumers,
    permission_patterns,
    user_name,
)
from migrations_playbook.runner import broker_identities


def test_each_half_owns_the_consumers_the_stack_runs_for_it():
    assert half_consumers() == {
        "monolith": ["notifications", "analytics", "monolith"],
        "payments": ["payments"],
        "users": ["users"],
    }


def test_a_half_may_use_its_own_queues_and_the_events_exchange_but_not_the_other_halfs_queues():
    patterns = {k: re.compile(v) for k, v in permission_patterns(["payments"]).items()}
    for name in ("payments.events", "payments.events.retry.1", "payments.events.dlq"):
        assert all(p.match(name) for p in patterns.values()), name
    assert patterns["write"].match("strangler.events") and patterns["write"].match("amq.default")
    assert patterns["read"].match("strangler.events.stream")
    for name in ("monolith.events", "analytics.events.wait", "strangler.jobs", "celery"):
        assert not any(p.match(name) for p in patterns.values()), name


def test_users_are_named_per_vhost_so_two_stacks_on_one_broker_never_share_one():
    assert user_name("monolith", "/") == "strangler-monolith"
    assert user_name("monolith", "walk") == "strangler-monolith@walk"


def test_without_management_api_or_rabbitmqctl_the_runner_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(broker_users.shutil, "which", lambda name: None)
    with pytest.raises(BrokerUsersError) as caught:
        broker_users_ensure(
            broker_url="amqp://guest:guest@127.0.0.1:5672/x",
            var_dir=tmp_path,
            environ={"STRANGLER_RABBITMQ_API": "http://127.0.0.1:1"},
        )
    message = str(caught.value)
    assert "the management API at http://127.0.0.1:1 did not answer" in message
    assert "rabbitmqctl is not installed" in message
    assert "rabbitmq-plugins enable rabbitmq_management" in message
    assert "STRANGLER_BROKER_USERS=0" in message
    # The passwords were generated all the same, readable by their owner only.
    for half in ("monolith", "payments"):
        mode = (tmp_path / f"broker-{half}.password").stat().st_mode
        assert stat.S_IMODE(mode) == 0o600


def test_the_embedded_broker_and_an_explicit_opt_out_create_no_users(tmp_path):
    assert broker_identities({}, tmp_path) == ({}, {}, None, [])
    per_half, shared, said, users = broker_identities(
        {"BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//", "STRANGLER_BROKER_USERS": "0"},
        tmp_path,
    )
    assert (per_half, shared, users) == ({}, {}, [])
    assert "operator's user" in said


@pytest.mark.integration
def test_the_users_made_for_a_stack_are_deleted_when_it_stops(tmp_path):
    import subprocess

    from migrations_playbook.broker_users import broker_users_remove
    from tests.outbox.half_users import half_users_vhost

    with half_users_vhost(tmp_path) as vhost:
        users = list(vhost.users.values())
        assert broker_users_remove(users=users, broker_url=vhost.admin_url) == []
        listed = subprocess.run(
            ["rabbitmqctl", "-q", "list_users"], capture_output=True, text=True, check=True
        ).stdout
    assert not any(user.user in listed for user in users)
