"""`strangler proxy check` and `strangler proxy routes` against a running gateway."""

from __future__ import annotations

import asyncio

from strangler_proxy.cli import main

from .conftest import aio, gateway, upstream


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


@aio
async def test_routes_set_switches_a_route_through_the_admin_api(capsys):
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
    assert gw.changes[-1]["who"].startswith("cli:")


@aio
async def test_the_top_level_routes_command_lists_the_routes_in_force(capsys):
    from strangler_proxy import routes_cli

    async with upstream(name="mono") as mono, gateway(monolith=mono.url) as (_, base):
        code = await asyncio.to_thread(routes_cli.main, ["--url", base])
    assert code == 0
    assert "default                  monolith     monolith" in capsys.readouterr().out
