"""Slow password guessing down: login attempts counted per account and per client address.

Two rules, each a fixed window kept in Django's cache (shared by every worker of the half that
owns the users: the database cache by default, Redis when `REDIS_URL` is set):

| rule        | counts                                 | default       |
|-------------|----------------------------------------|---------------|
| per account | failed logins for one email (any case) | 10 per 15 min |
| per address | every login attempt from one client    | 600 per 5 min |

Settings: `STRANGLER_LOGIN_ACCOUNT_FAILURES` and `STRANGLER_LOGIN_ACCOUNT_WINDOW_S`,
`STRANGLER_LOGIN_ADDRESS_ATTEMPTS` and `STRANGLER_LOGIN_ADDRESS_WINDOW_S`.

Why these counts: guessing one account's password is what the per-account rule stops, and only
failures count there, so a user who logs in on many devices never locks themselves out. An
email that has no account is counted the same way, so a 429 says nothing about who is
registered. Per address every attempt counts, successes included: registration is open, so a
success proves nothing about the caller, and each attempt costs a password hash (CPU) and, when
it succeeds, a new token row; the budget is wide enough for a shop behind one NAT address, and
for our own tools: `strangler compare` runs the contract suite (about 130 logins) twice on one
stack, and the demo's gates log customers in again at every stage, all from one machine.

A refused attempt never reaches the password check: the right password is refused too until
the window ends, so a lucky guess in a throttled burst is worth nothing. An account's slot is
reserved before the password is checked and given back on success (`login_attempt_succeeded`),
so concurrent guesses cannot all slip through below the limit. On Redis the counters are exact
(INCR); on the database cache two truly simultaneous attempts may be counted once.

The client address is `REMOTE_ADDR`, or the last `X-Forwarded-For` entry when the peer is a
trusted proxy (`STRANGLER_TRUSTED_PROXIES`): the proxy appends the address it saw, and every
entry before that one is whatever the client wrote. IPv6 clients are counted per /64, the block
one host usually holds. A limit of 0 turns its rule off.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import math
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.cache import caches

from .errors import RateLimited

DEFAULT_TRUSTED_PROXIES = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
DEFAULTS = {
    "STRANGLER_LOGIN_ACCOUNT_FAILURES": 10,
    "STRANGLER_LOGIN_ACCOUNT_WINDOW_S": 900,
    "STRANGLER_LOGIN_ADDRESS_ATTEMPTS": 600,
    "STRANGLER_LOGIN_ADDRESS_WINDOW_S": 300,
    "STRANGLER_LOGIN_THROTTLE_CACHE": "default",
    "STRANGLER_TRUSTED_PROXIES": DEFAULT_TRUSTED_PROXIES,
}


def _setting(name: str):
    return getattr(settings, name, DEFAULTS[name])


@dataclass(frozen=True)
class _Window:
    """One rule's fixed window at the present moment."""

    key: str
    limit: int
    seconds_left: int
    window_s: int


def _window(kind: str, subject: str, *, limit_setting: str, window_setting: str) -> _Window:
    window_s = max(1, int(_setting(window_setting)))
    now = time.time()
    index = int(now // window_s)
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]  # no email in clear in the cache
    return _Window(
        key=f"login-throttle:{kind}:{digest}:{index}",
        limit=int(_setting(limit_setting)),
        seconds_left=max(1, math.ceil((index + 1) * window_s - now)),
        window_s=window_s,
    )


def _account(email: str) -> _Window:
    return _window(
        "account",
        email.strip().lower(),
        limit_setting="STRANGLER_LOGIN_ACCOUNT_FAILURES",
        window_setting="STRANGLER_LOGIN_ACCOUNT_WINDOW_S",
    )


def _address(address: str) -> _Window:
    return _window(
        "address",
        address,
        limit_setting="STRANGLER_LOGIN_ADDRESS_ATTEMPTS",
        window_setting="STRANGLER_LOGIN_ADDRESS_WINDOW_S",
    )


def _cache():
    return caches[_setting("STRANGLER_LOGIN_THROTTLE_CACHE")]


def _count(window: _Window) -> int:
    """Add one to the window's counter and return the new count."""
    cache = _cache()
    # The key outlives its window a little, so a slow clock never reads a fresh zero early.
    timeout = window.seconds_left + 5
    cache.add(window.key, 0, timeout=timeout)
    try:
        return cache.incr(window.key)
    except ValueError:  # expired or culled between add and incr: this attempt is the first
        cache.set(window.key, 1, timeout=timeout)
        return 1


def login_attempt_begin(*, email: str, address: str) -> None:
    """Count a login attempt before its password is checked; raise RateLimited (429) if over.

    Call `login_attempt_succeeded` when the password turns out right; a failure keeps its count.
    """
    by_address = _address(address)
    if by_address.limit > 0 and _count(by_address) > by_address.limit:
        raise RateLimited(
            f"Too many login attempts from your address; try again in {by_address.seconds_left} s.",
            retry_after=by_address.seconds_left,
        )
    by_account = _account(email)
    if by_account.limit > 0 and _count(by_account) > by_account.limit:
        raise RateLimited(
            f"Too many failed logins for this account; try again in {by_account.seconds_left} s.",
            retry_after=by_account.seconds_left,
        )


def login_attempt_succeeded(*, email: str) -> None:
    """Give back the account's slot that `login_attempt_begin` reserved: successes are free."""
    by_account = _account(email)
    if by_account.limit > 0:
        # ValueError: the window rolled over meanwhile, and there is nothing to give back.
        with contextlib.suppress(ValueError):
            _cache().decr(by_account.key)


@lru_cache(maxsize=8)
def _networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in spec.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(
            f"STRANGLER_TRUSTED_PROXIES must be comma-separated networks such as "
            f"127.0.0.0/8; got {spec!r}: {exc}"
        ) from None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def forwarded_by_trusted_proxy(meta: dict) -> bool:
    """Return whether the request came through a trusted proxy (it added X-Forwarded-For)."""
    peer = _ip(meta.get("REMOTE_ADDR") or "")
    if peer is None or not meta.get("HTTP_X_FORWARDED_FOR"):
        return False
    trusted = _networks(_setting("STRANGLER_TRUSTED_PROXIES"))
    return any(peer in network for network in trusted if network.version == peer.version)


def client_address(meta: dict) -> str:
    """Return the address a request's login attempts are counted under (see the module doc)."""
    peer = _ip(meta.get("REMOTE_ADDR") or "")
    forwarded = meta.get("HTTP_X_FORWARDED_FOR") or ""
    address = peer
    if peer is not None and forwarded:
        trusted = _networks(_setting("STRANGLER_TRUSTED_PROXIES"))
        if any(peer in network for network in trusted if network.version == peer.version):
            address = _ip(forwarded.split(",")[-1]) or peer
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)
