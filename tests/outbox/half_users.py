"""A RabbitMQ vhost of the test's own, with one broker user per half as `strangler up` makes.

The users come from `migrations_playbook.broker_users.broker_users_ensure`, the runner's own
code; the vhost and the users are deleted afterwards. Needs BROKER_URL=amqp://... on this
machine's broker and `rabbitmqctl` (vhosts cannot be made through AMQP): skipped otherwise.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from migrations_playbook.broker_users import HalfUser, broker_users_ensure, half_environment


@dataclass(frozen=True)
class HalfUsersVhost:
    vhost: str
    admin_url: str  # the operator's user (guest) on this vhost: the outsider of the attacks
    users: dict[str, HalfUser]
    mapping: dict[str, str]  # OUTBOX_BROKER_USERS


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


@contextlib.contextmanager
def half_users_vhost(var_dir: Path) -> Iterator[HalfUsersVhost]:
    """Yield a fresh vhost with the per-half users of `strangler up` on it."""
    url = os.environ.get("BROKER_URL", "")
    if not url.startswith("amqp"):
        pytest.skip("needs BROKER_URL=amqp://...")
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("needs rabbitmqctl on this machine to create a vhost")
    vhost = f"strangler-test-{secrets.token_hex(4)}"
    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    _ctl("add_vhost", vhost)
    users: list[HalfUser] = []
    try:
        _ctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
        users = broker_users_ensure(broker_url=admin_url, var_dir=var_dir, environ={})
        _, mapping = half_environment(users)
        yield HalfUsersVhost(
            vhost=vhost,
            admin_url=admin_url,
            users={user.half: user for user in users},
            mapping=dict(item.split("=", 1) for item in mapping.split(",")),
        )
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _ctl("delete_vhost", vhost)
        for user in users:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                _ctl("delete_user", user.user)
