"""`strangler proxy check` and `strangler proxy routes` against a running gateway."""

from __future__ import annotations

import asyncio

from strangler_proxy.cli import main

from .conftest import ADMIN_TOKEN, aio, gateway, upstream


def test_check_names_the_route_and_problem_of_a_bad_file(tmp_path, capsys):
    bad = tmp_path / "routes.yaml"
    bad.write_text(
        "routes:\n  - {name: pay, prefix: /api/payments/, mode: extracted, service: payments}\n"
    )
    assert main(["check", str(bad)]) == 1
    assert "invalid: route 'pay': unknown service 'payments'" in capsys.readouterr().err
    good = tmp_path / "ok.yaml"
    good.write_text("routes:\n  - {name: all, prefix: /}\n")
    assert main(["check", str(good)]) == 0


def test_routes_set_switches_a_route_through_the_admin_api(capsys, monkeypatch):
    monkeypatch.setenv("STRANGLER_ADMIN_TOKEN", ADMIN_TOKEN)  # the variable wins over var dir
    _routes_set(capsys)


@aio
async def _routes_set(capsys):
    async with upstream(name="mono") as mono, upstream(name="cand") as cand:
        table = {
            "services": {"pay": {"url": cand.url}},
            "routes": [{"name": "pay", "prefix": "/api/payments/"}],
        }
        async with gateway(table, monolith=mono.url) as (gw, base):
            code = await asyncio.to_thread(
                main, ["routes", "--url", base, "set", "pay", "canary:25", "pay"]
            )
            listed = await asyncio.to_thread(main, ["routes", "--url", base])
            refused = await asyncio.to_thread(
                main, ["routes", "--url", base, "set", "pay", "sideways"]
            )
    out = capsys.readouterr()
    assert (code, listed, refused) == (0, 0, 1)
    assert gw.table.route("pay").mode == "canary:25"
    assert "pay: mode canary:25 (service pay)" in out.out
    assert "mode 'sideways' is not one of" in out.err
    assert gw.changes[-1]["who"] == "admin"  # the token's holder
    assert gw.changes[-1]["claimed_actor"].startswith("cli:")


def test_the_top_level_routes_command_finds_the_token_in_the_var_dir(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("STRANGLER_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("STRANGLER_VAR_DIR", str(tmp_path))
    token = tmp_path / "admin-token"
    token.write_text(ADMIN_TOKEN + "\n")
    token.chmod(0o600)
    _top_level_routes(capsys)


@aio
async def _top_level_routes(capsys):
    from migrations_playbook.cli import main as strangler  # the console script `strangler`

    async with upstream(name="mono") as mono, gateway(monolith=mono.url) as (_, base):
        code = await asyncio.to_thread(strangler, ["routes", "--url", base])
    assert code == 0
    assert "default                  monolith     monolith" in capsys.readouterr().out
