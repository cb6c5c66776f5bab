"""The monolith applies the users service's events (consumer "monolith", queue monolith.events).

From step 2 on, the users service (origin "users") registers users, changes profiles and
passwords and issues tokens for the requests the proxy sends it. The monolith keeps its user
table as the replica its foreign keys (orders, payments, notifications) point at, with the
password hash and the token digests too, so that routing back to it (rollback) loses no
registration, login or password change:

| event                | effect in the monolith                                        |
|----------------------|---------------------------------------------------------------|
| `user.registered`    | insert the user with the service's id, hash included           |
| `user.updated`       | take the new state when it is newer (`updated_at`)             |
| `user.token_issued`  | store the token's digest: the token works here too             |
| `user.token_revoked` | delete the digests, and every token older than `before`        |

The monolith's own `user.*` events come back as echoes and are dropped by the runtime. The rules
live in service_kit/user_events.py, which the users service applies the same way.
"""

from __future__ import annotations

from outbox.envelope import Envelope
from outbox.registry import handler
from service_kit.user_events import token_issued_apply, token_revoked_apply, user_replica_apply

CONSUMER = "monolith"


@handler("user.registered", consumer=CONSUMER)
@handler("user.updated", consumer=CONSUMER)
def user_state_apply(event: Envelope) -> None:
    """Insert or update the monolith's copy of a user the users service wrote."""
    user_replica_apply(payload=event.payload)


@handler("user.token_issued", consumer=CONSUMER)
def user_token_issued_apply(event: Envelope) -> None:
    """Store the digest of a token the users service issued."""
    token_issued_apply(payload=event.payload)


@handler("user.token_revoked", consumer=CONSUMER)
def user_token_revoked_apply(event: Envelope) -> None:
    """Delete the tokens the users service revoked."""
    token_revoked_apply(payload=event.payload)
