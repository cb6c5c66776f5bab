"""Events the users service consumes (consumer "users", queue `users.events`).

| event                | from     | effect here                                                 |
|----------------------|----------|-------------------------------------------------------------|
| `user.registered`    | monolith | insert the user with the monolith's id, hash included        |
| `user.updated`       | monolith | take the new state when it is newer (`updated_at`)           |
| `user.token_issued`  | monolith | store the token's digest: a monolith token works here too    |
| `user.token_revoked` | monolith | delete the digests, and every token older than `before`      |

The rules are the monolith's consumer's (service_kit/user_events.py). The runtime applies each
event once, in order per aggregate and writer, and drops the service's own events (origin
"users") as echoes. Found by `outbox_consume`'s autodiscovery.
"""

from __future__ import annotations

from outbox.envelope import Envelope
from outbox.registry import handler
from service_kit.user_events import token_issued_apply, token_revoked_apply, user_replica_apply

CONSUMER = "users"


@handler("user.registered", consumer=CONSUMER)
@handler("user.updated", consumer=CONSUMER)
def user_state_apply(event: Envelope) -> None:
    """Insert or update the service's copy of a user the monolith wrote."""
    user_replica_apply(payload=event.payload)


@handler("user.token_issued", consumer=CONSUMER)
def user_token_issued_apply(event: Envelope) -> None:
    """Store the digest of a token the monolith issued."""
    token_issued_apply(payload=event.payload)


@handler("user.token_revoked", consumer=CONSUMER)
def user_token_revoked_apply(event: Envelope) -> None:
    """Delete the tokens the monolith revoked."""
    token_revoked_apply(payload=event.payload)
