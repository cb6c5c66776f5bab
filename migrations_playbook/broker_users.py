r"""Give each half of the stack its own RabbitMQ user, so consumers can tell who sent an event.

Consumers believe an event's `origin` only when RabbitMQ vouches for its sender: the validated
`user_id` property must be the broker user of that origin's half (`outbox.sender`). So, on an
`amqp://` BROKER_URL, `strangler up` creates (or updates) one user per half:

| half | user (vhost `/`) | user (vhost `V`) |
|---|---|---|
| monolith | `strangler-monolith` | `strangler-monolith@V` |
| payments | `strangler-payments` | `strangler-payments@V` |
| users | `strangler-users` | `strangler-users@V` |

Each password is generated once per var dir and kept at `$STRANGLER_VAR_DIR/broker-<half>.password`
(mode 0600). Permissions on the vhost, where C is the half's consumers (monolith: `monolith`,
`notifications`, `analytics`; payments: `payments`; users: `users`), are `permission_patterns()`:

    configure  ^(E|E\.stream|Q|S)$       E = strangler\.events
    write      ^(E|E\.stream|amq\.default|Q|S)$  Q = (C)\.events(\..*)?
    read       ^(E|E\.stream|Q|S)$         S = strangler\.broadcast(\..*)?|strangler\.notify(\..*)?

that is: declare and publish to the events exchange, declare, bind and read its own consumers'
queues (and retry, wait, dead-letter queues), read the replay stream, send retries through the
default exchange, and use the broadcast and notification exchanges; no other half's queue can be
read. No user is tagged `impersonator`, so none can publish with another user's `user_id`.

The outbox's connections of every process of a half (relay, consumers, the web process's
figures) use `OUTBOX_BROKER_URL` = the operator's BROKER_URL with the half's user in it; Celery
keeps BROKER_URL. Consumers get `OUTBOX_BROKER_USERS=monolith=<user>,payments=<user>,...`
(every half of the step).

The users live as long as the stack: `strangler up` deletes them when it stops (a runner that
is killed leaves them; the next start on the same vhost takes them over again).

How: RabbitMQ's management HTTP API when the plugin answers (`STRANGLER_RABBITMQ_API`, default
`http://<broker host>:15672`), else `rabbitmqctl import_definitions` when rabbitmqctl is on this
machine and may talk to the node (root or the rabbitmq user). Neither: BrokerUsersError says so
and what to do. `STRANGLER_BROKER_USERS=0` runs every half as the operator's user instead
(consumers then cannot tell the halves apart).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests

from migrations_playbook.processes import PROCESSES

_SHARED = (
    r"strangler\.broadcast(\..*)?",
    r"strangler\.notify(\..*)?",
)


class BrokerUsersError(Exception):
    """The per-half broker users cannot be created; the message says why and what to do."""


@dataclass(frozen=True)
class HalfUser:
    half: str
    user: str
    url: str  # the operator's BROKER_URL (every node) with this user and its password
    api: str | None = None  # the management API that created it; None: rabbitmqctl did


def half_consumers() -> dict[str, list[str]]:
    """Return each half's consumer names, from the stack's process list."""
    halves: dict[str, list[str]] = {}
    for spec in PROCESSES:
        halves.setdefault(spec.database, [])
        if "outbox_consume" in spec.argv:
            service = spec.argv[spec.argv.index("--service") + 1]
            halves[spec.database].append(service)
    return halves


def permission_patterns(consumers: list[str]) -> dict[str, str]:
    """Return the configure, write and read patterns of a half whose consumers are these."""
    own = r"(" + "|".join(sorted(consumers)) + r")\.events(\..*)?" if consumers else None
    parts = [p for p in (own, *_SHARED) if p]

    def pattern(*extra: str) -> str:
        return "^(" + "|".join([*extra, *parts]) + ")$"

    return {
        "configure": pattern(r"strangler\.events", r"strangler\.events\.stream"),
        "write": pattern(r"strangler\.events", r"strangler\.events\.stream", r"amq\.default"),
        "read": pattern(r"strangler\.events", r"strangler\.events\.stream"),
    }


def _vhost(url: str) -> str:
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def user_name(half: str, vhost: str) -> str:
    """Return the broker user of `half` on `vhost` (users are global; vhosts keep stacks apart)."""
    return f"strangler-{half}" if vhost == "/" else f"strangler-{half}@{vhost}"


def _password(var_dir: Path, half: str) -> str:
    path = var_dir / f"broker-{half}.password"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    path.chmod(0o600)
    return path.read_text().strip()


def _with_user(url: str, user: str, password: str) -> str:
    """Return every node of `url` with `user`:`password` in place of its credentials."""
    nodes = []
    for node in url.split(";"):
        parts = urlsplit(node.strip())
        host = parts.netloc.rsplit("@", 1)[-1]
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
        nodes.append(urlunsplit(parts._replace(netloc=netloc)))
    return ";".join(nodes)


def _password_hash(password: str) -> str:
    """Return RabbitMQ's rabbit_password_hashing_sha256 of `password` (salted, base64)."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(users: dict[str, tuple[str, dict[str, str]]], vhost: str) -> dict:
    """Return RabbitMQ definitions creating `users` (name -> (password, permissions))."""
    return {
        "users": [
            {
                "name": name,
                "password_hash": _password_hash(password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": [],
            }
            for name, (password, _) in users.items()
        ],
        "permissions": [
            {"user": name, "vhost": vhost, **patterns} for name, (_, patterns) in users.items()
        ],
    }


def _api_base(url: str, environ: dict[str, str]) -> str:
    if environ.get("STRANGLER_RABBITMQ_API"):
        return environ["STRANGLER_RABBITMQ_API"].rstrip("/")
    return f"http://{urlsplit(url.split(';')[0]).hostname or '127.0.0.1'}:15672"


def _apply_by_api(base: str, url: str, document: dict) -> str | None:
    """Post the definitions to the management API; return None on success, else why not."""
    parts = urlsplit(url.split(";")[0])
    auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
    try:
        answer = requests.post(f"{base}/api/definitions", json=document, auth=auth, timeout=10)
    except requests.RequestException as exc:
        return f"the management API at {base} did not answer ({type(exc).__name__})"
    if answer.status_code in (200, 201, 204):
        return None
    return f"the management API at {base} answered {answer.status_code}"


def _apply_by_rabbitmqctl(document: dict) -> str | None:
    """Import the definitions with rabbitmqctl (read from stdin); None on success, else why."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return "rabbitmqctl is not installed on this machine"
    try:
        done = subprocess.run(  # noqa: S603 (fixed argv; definitions on stdin, not in argv)
            [ctl, "-q", "import_definitions"],
            input=json.dumps(document),
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"rabbitmqctl failed to run ({exc})"
    if done.returncode != 0:
        return (
            f"rabbitmqctl import_definitions exited {done.returncode}: {done.stderr.strip()[-300:]}"
        )
    return None


def broker_users_ensure(
    *, broker_url: str, var_dir: Path, environ: dict[str, str]
) -> list[HalfUser]:
    """Create or update one broker user per half; return them with their connection URLs.

    Raise BrokerUsersError naming what was tried and how to fix it.
    """
    vhost = _vhost(broker_url.split(";")[0])
    halves = half_consumers()
    users = {
        user_name(half, vhost): (_password(var_dir, half), permission_patterns(consumers))
        for half, consumers in halves.items()
    }
    document = definitions(users, vhost)
    base = _api_base(broker_url, environ)
    by_api = _apply_by_api(base, broker_url, document)
    if by_api is not None:
        by_ctl = _apply_by_rabbitmqctl(document)
        if by_ctl is not None:
            raise BrokerUsersError(
                f"cannot create the per-half broker users ({', '.join(users)}): {by_api}, and "
                f"{by_ctl}. Enable the management plugin (rabbitmq-plugins enable "
                "rabbitmq_management; or point STRANGLER_RABBITMQ_API at it), or run strangler "
                "up as root or rabbitmq on the broker's machine; or set STRANGLER_BROKER_USERS=0 "
                "to run every half as the operator's user (consumers then cannot tell the halves "
                "apart: see docs/security.md)."
            )
    api = base if by_api is None else None
    found = []
    for half in halves:
        name = user_name(half, vhost)
        found.append(HalfUser(half, name, _with_user(broker_url, name, users[name][0]), api))
    return found


def broker_users_remove(*, users: list[HalfUser], broker_url: str) -> list[str]:
    """Delete the per-half users again (the way they were made); return what could not be."""
    problems = []
    parts = urlsplit(broker_url.split(";")[0])
    auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
    ctl = shutil.which("rabbitmqctl")
    running = []
    for user in users:
        if user.api:
            try:
                requests.delete(
                    f"{user.api}/api/users/{quote(user.user, safe='')}", auth=auth, timeout=10
                )
            except requests.RequestException as exc:
                problems.append(f"{user.user}: {type(exc).__name__}")
        elif ctl:
            command = [ctl, "-q", "delete_user", user.user]
            running.append((user.user, subprocess.Popen(command, stdout=subprocess.DEVNULL)))  # noqa: S603
    for name, process in running:  # in parallel: each rabbitmqctl takes a second to start
        try:
            if process.wait(60) != 0:
                problems.append(f"{name}: rabbitmqctl exited {process.returncode}")
        except subprocess.TimeoutExpired:
            process.kill()
            problems.append(f"{name}: rabbitmqctl timed out")
    return problems


def half_environment(users: list[HalfUser]) -> tuple[dict[str, dict[str, str]], str]:
    """Return each half's extra environment and the OUTBOX_BROKER_USERS value for all."""
    mapping = ",".join(f"{u.half}={u.user}" for u in users)
    return {u.half: {"OUTBOX_BROKER_URL": u.url} for u in users}, mapping
