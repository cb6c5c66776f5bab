"""The stack of step 1: one database per service, the shared identity key, the generated table."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path

from migrations_playbook import runner
from migrations_playbook.databases import service_database_url, service_environment
from migrations_playbook.processes import processes_for
from migrations_playbook.supervisor import LogWriter


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_embedded_default_gives_each_service_its_own_sqlite_file(tmp_path):
    url = service_database_url(service="payments", database_url=None, var_dir=tmp_path)
    assert url == f"sqlite:///{tmp_path.resolve() / 'payments.sqlite3'}"


def test_postgres_gives_each_service_a_database_named_after_the_monoliths():
    monolith = "postgres://u:p@db:5432/shop"
    assert service_database_url(service="payments", database_url=monolith, var_dir=Path()) == (
        "postgres://u:p@db:5432/shop_payments"
    )
    assert service_database_url(service="monolith", database_url=monolith, var_dir=Path()) == (
        monolith
    )


def test_a_service_reads_the_monolith_through_an_explicit_url(tmp_path):
    env = service_environment(
        service="payments", settings="extracted.payments.settings", environ={}, var_dir=tmp_path
    )
    assert env["MONOLITH_DATABASE_URL"] == f"sqlite:///{tmp_path.resolve() / 'monolith.sqlite3'}"
    assert env["DJANGO_SETTINGS_MODULE"] == "extracted.payments.settings"


def test_step_1_adds_the_payments_service_its_relay_consumer_and_migration():
    names = {spec.name for spec in processes_for(1)} - {spec.name for spec in processes_for(0)}
    assert names == {"migrate-payments", "payments", "payments-relay", "payments-consumer"}
    step0 = {spec.name for spec in processes_for(0)}
    assert {"relay", "notifications", "analytics", "monolith-consumer", "routes"} <= step0


def test_payments_processes_get_their_own_database_and_the_shared_identity_key(tmp_path):
    ports = [_free_port() for _ in range(3)]
    args = runner.build_parser().parse_args(
        ["--step", "1", "--var-dir", str(tmp_path), "--proxy-port", str(ports[0]),
         "--monolith-port", str(ports[1]), "--payments-port", str(ports[2])]
    )  # fmt: skip
    environ = {"DATABASE_URL": "postgres://u@db:5432/shop"}
    specs, context, var_dir, _ = runner.plan_stack(args, environ)
    stack = runner.Stack(
        specs=specs,
        context=context,
        env=environ | {"STRANGLER_VAR_DIR": str(var_dir), "STRANGLER_IDENTITY_SECRET": "k"},
        log=LogWriter(names=["strangler"], stream=io.StringIO(), colour=False),
        ready_timeout=1,
        grace=1,
    )
    by_name = {spec.name: spec for spec in specs}
    payments = stack._child(by_name["payments"])
    monolith = stack._child(by_name["monolith"])
    proxy = stack._child(by_name["proxy"])
    assert payments.env["DATABASE_URL"] == "postgres://u@db:5432/shop_payments"
    assert payments.env["MONOLITH_DATABASE_URL"] == "postgres://u@db:5432/shop"
    assert payments.env["STRANGLER_ORDERS_URL"] == f"http://127.0.0.1:{ports[1]}"
    assert monolith.env["DATABASE_URL"] == "postgres://u@db:5432/shop"
    assert payments.env["STRANGLER_IDENTITY_SECRET"] == proxy.env["STRANGLER_IDENTITY_SECRET"]
    assert proxy.env["STRANGLER_ROUTES"] == str(var_dir / "playbook" / "routes.toml")
    routes = stack._child(by_name["routes"])
    assert routes.argv[-1] == f"payments=http://127.0.0.1:{ports[2]}"


def test_identity_secret_is_made_once_per_var_dir(tmp_path):
    first = runner.identity_secret(tmp_path)
    assert runner.identity_secret(tmp_path) == first
    assert len(first) >= 32
    assert oct(os.stat(tmp_path / "identity-secret").st_mode)[-3:] == "600"
