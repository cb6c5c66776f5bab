"""The monolith's side of the users service tests, run in a subprocess with its settings.

    python monolith_side.py register PREFIX COUNT    # register users concurrently; print ids
    python monolith_side.py events                   # print the monolith's user.* envelopes
    python monolith_side.py apply < envelopes.json   # apply the service's events; print outcomes
    python monolith_side.py login EMAIL PASSWORD     # log in with the monolith's rules
    python monolith_side.py change EMAIL OLD NEW     # change a password on the monolith
    python monolith_side.py seed                     # 7 users; 2 log in; seed2 changes password

DJANGO_SETTINGS_MODULE=monolith.settings and DATABASE_URL point at a migrated monolith database:
the service's tests never import the monolith into their own process.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor

import django

django.setup()

from django.db import connection  # noqa: E402

import monolith.users.consumers  # noqa: E402, F401  (registers the handlers)
from monolith.users import services  # noqa: E402
from monolith.users.models import User  # noqa: E402
from outbox.envelope import Envelope  # noqa: E402
from outbox.inbox import event_apply  # noqa: E402
from outbox.models import OutboxEvent  # noqa: E402
from outbox.registry import registry  # noqa: E402

PASSWORD = "s3cret-Passw0rd"


def _register(email: str) -> int:
    try:
        return services.user_register(email=email, password=PASSWORD).pk
    finally:
        connection.close()


def register(prefix: str, count: str) -> list[int]:
    emails = [f"{prefix}{n}@example.com" for n in range(int(count))]
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(_register, emails))


def events() -> list[dict]:
    rows = OutboxEvent.objects.filter(aggregate_type="user").order_by("id")
    return [Envelope.from_row(row).to_dict() for row in rows]


def apply() -> list[str]:
    outcomes = []
    for document in json.load(sys.stdin):
        envelope = Envelope.from_dict(document)
        subscriptions = registry.matching("monolith", envelope.type)
        outcomes.append(
            str(event_apply(consumer="monolith", envelope=envelope, subscriptions=subscriptions))
        )
    return outcomes


def login(email: str, password: str) -> bool:
    return services.user_login(email=email, password=password, client_address="127.0.0.9") != ""


def change(email: str, old: str, new: str) -> int:
    user = User.objects.get(email__iexact=email)
    return services.user_update(user=user, password=new, current_password=old).pk


def seed() -> list[int]:
    ids = [_register(f"seed{n}@example.com") for n in range(7)]
    login("seed1@example.com", PASSWORD)
    login("seed2@example.com", PASSWORD)
    change("seed2@example.com", PASSWORD, "N3w-Passw0rd!")
    login("seed2@example.com", "N3w-Passw0rd!")
    return ids


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    result = {"register": register, "events": events, "apply": apply, "login": login,
              "change": change, "seed": seed}[command](*args)  # fmt: skip
    print(json.dumps(result, default=str))
