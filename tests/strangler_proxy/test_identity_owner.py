"""Who owns identity is a property of the route table, moved by the users route's mode; the proxy
asks the owners in turn, and keeps every revocation while the two users halves catch up."""

# ruff: noqa: SIM117  (upstreams, then the gateways that need their URLs: clearer nested)
from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from service_kit.identity import HEADER
from strangler_proxy import auth as edge_auth
from strangler_proxy.routes import RouteTableError, table_from_dict

from .conftest import aio, upstream
from .test_auth_revocation import call, fake_monolith, proxies

MONO = "http://127.0.0.1:8001"


def users_table(mode: str, mono_url: str = MONO, users_url: str = "http://127.0.0.1:8102"):
    return table_from_dict(
        {
            "services": {"users": {"url": users_url, "health_path": None}},
            "routes": [
                {"name": "users", "prefix": "/api/users/", "mode": mode, "service": "users",
                 "identity": True, "fallback": False},
                {"name": "auth", "prefix": "/api/auth/", "mode": mode, "service": "users",
                 "fallback": False},
                {"name": "rest", "prefix": "/"},
            ],
        },
        monolith_url=mono_url,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "owners"),
    [
        ("monolith", ("monolith", "users")),
        ("shadow", ("monolith", "users")),
        ("canary:10", ("monolith", "users")),
        ("canary:50", ("monolith", "users")),
        ("extracted", ("users", "monolith")),
    ],
)
def test_the_identity_owner_follows_the_users_routes_mode(mode, owners):
    assert users_table(mode).identity_owners == owners


def test_a_table_without_an_identity_route_asks_the_monolith_alone():
    table = table_from_dict({"routes": [{"name": "rest", "prefix": "/"}]}, monolith_url=MONO)

    assert table.identity_owners == ("monolith",)


def test_the_identity_flag_round_trips_and_only_one_route_may_claim_it():
    data = users_table("extracted").as_dict()
    assert data["routes"][0]["identity"] is True

    data["routes"][1]["identity"] = True
    with pytest.raises(RouteTableError, match="already claimed by route 'users'"):
        table_from_dict(data, monolith_url=MONO)
    data["routes"][1]["identity"] = "yes"
    with pytest.raises(RouteTableError, match="'identity' must be true or false"):
        table_from_dict(data, monolith_url=MONO)


def _me_only(tokens: dict[str, dict], served: list[str] | None = None, name: str = ""):
    """A users half: /api/users/me/ resolves its tokens, logout deletes one; any other path
    answers 200 only to a request the proxy vouched for (a signed identity), else 401."""
    inner = fake_monolith(tokens)

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/api/users/me/" and request.method == "GET" and served is not None:
            served.append(name)
        if request.path.startswith(("/api/users/", "/api/auth/")):
            return await inner(request)
        if HEADER not in request.headers:
            return web.json_response({"error": "not_authenticated"}, status=401)
        return web.json_response({"served": name})

    return handler


@aio
async def test_a_token_made_on_the_second_owner_a_moment_ago_is_vouched_for():
    asked: list[str] = []
    mono_tokens: dict[str, dict] = {}
    svc_tokens = {"fresh": {"id": 1_000_000_001, "email": "new@example.com"}}
    async with upstream(_me_only(mono_tokens, asked, "monolith")) as mono, \
            upstream(_me_only(svc_tokens, asked, "users")) as svc:  # fmt: skip
        async with proxies(1, users_table("canary:10", mono.url, svc.url),
                           monolith_url=mono.url) as (_, [base]):  # fmt: skip
            assert await call("GET", base + "/api/orders/", "fresh") == 200
            assert asked == ["monolith", "users"]
            mono_tokens["unknown-here"] = {"id": 5}
            asked.clear()
            assert await call("GET", base + "/api/orders/", "unknown-here") == 200
            assert asked == ["monolith"]  # the first owner knew it: no second question


@aio
async def test_once_extracted_the_users_service_is_asked_first():
    asked: list[str] = []
    both = {"tok": {"id": 3}}
    async with upstream(_me_only(dict(both), asked, "monolith")) as mono, \
            upstream(_me_only(dict(both), asked, "users")) as svc:  # fmt: skip
        async with proxies(1, users_table("extracted", mono.url, svc.url),
                           monolith_url=mono.url) as (_, [base]):  # fmt: skip
            assert await call("GET", base + "/api/orders/", "tok") == 200
            assert asked == ["users"]


@aio
async def test_a_token_logged_out_through_the_proxy_stays_refused_while_a_half_still_knows_it():
    # The logout went to the users service; the monolith has not applied the revocation yet.
    mono_tokens = {"tok": {"id": 3}}
    svc_tokens = {"tok": {"id": 3}}
    async with upstream(_me_only(mono_tokens)) as mono, \
            upstream(_me_only(svc_tokens)) as svc:  # fmt: skip
        async with proxies(1, users_table("extracted", mono.url, svc.url),
                           monolith_url=mono.url) as (_, [base]):  # fmt: skip
            assert await call("GET", base + "/api/orders/", "tok") == 200
            assert await call("POST", base + "/api/auth/logout/", "tok") == 204
            assert "tok" in mono_tokens and "tok" not in svc_tokens
            assert await call("GET", base + "/api/orders/", "tok") == 401


@aio
async def test_after_a_password_change_every_owner_must_vouch_and_a_lagging_one_is_awaited():
    # The password changed on the monolith (first owner); the service still knows the old token.
    old_mono: dict[str, dict] = {}
    old_svc = {"old": {"id": 3}}
    async with upstream(_me_only(old_mono)) as mono, \
            upstream(_me_only(old_svc)) as svc:  # fmt: skip
        async with proxies(1, users_table("canary:50", mono.url, svc.url),
                           monolith_url=mono.url) as (gateways, [base]):  # fmt: skip
            gateways[0].auth.revoke("user:3")
            began = time.monotonic()
            assert await call("GET", base + "/api/orders/", "old") == 401
            # The monolith refused it throughout: refused after the replication wait.
            assert time.monotonic() - began >= edge_auth.REPLICATION_WAIT_S * 0.9

            # A new token made on the service after the change reaches the monolith 300 ms later.
            old_svc["new"] = {"id": 3}

            async def replicate():
                await asyncio.sleep(0.3)
                old_mono["new"] = {"id": 3}

            task = asyncio.ensure_future(replicate())
            assert await call("GET", base + "/api/orders/", "new") == 200
            await task
