"""compose.yaml starts the processes of `strangler up`, with the same commands and settings."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from migrations_playbook.databases import service_database_url
from migrations_playbook.processes import Context, processes_for

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
STEP = COMPOSE["x-strangler-step"]
SPECS = processes_for(STEP)
SERVERS = {
    "DATABASE_URL": "postgres",
    "MONOLITH_DATABASE_URL": "postgres",
    "BROKER_URL": "rabbitmq",
    "REDIS_URL": "redis",
}
SERVER_NAMES = {"postgres", "rabbitmq", "redis"}
# Inside compose each process listens on all interfaces and reaches the others by service name.
CONTEXT = Context(
    bind="0.0.0.0",
    ports={spec.name: spec.port for spec in SPECS if spec.port is not None},
    hosts={spec.name: spec.name for spec in SPECS},
    step=STEP,
    routes="/var/lib/strangler/playbook/routes.toml",
)
by_name = pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)


def test_compose_runs_exactly_the_processes_of_its_step_beside_the_servers():
    assert set(SERVICES) == {spec.name for spec in SPECS} | SERVER_NAMES


@by_name
def test_compose_process_has_the_runner_command(spec):
    argv, _ = spec.render(CONTEXT)
    assert [str(part) for part in SERVICES[spec.name]["command"]] == argv


@by_name
def test_compose_process_has_the_runner_settings(spec):
    environment = SERVICES[spec.name]["environment"]
    _, env = spec.render(CONTEXT)
    assert {key: str(environment.get(key)) for key in env} == env
    missing = [name for name in (*spec.settings, "STRANGLER_VAR_DIR") if name not in environment]
    assert missing == []


@by_name
def test_compose_process_points_its_settings_at_the_compose_servers(spec):
    environment = SERVICES[spec.name]["environment"]
    servers = [setting for setting in spec.settings if setting in SERVERS]
    hosts = {setting: urlsplit(environment[setting]).hostname for setting in servers}
    assert hosts == {setting: SERVERS[setting] for setting in servers}


@pytest.mark.parametrize("database", sorted({spec.database for spec in SPECS}))
def test_processes_of_one_service_share_one_database_broker_and_redis(database):
    processes = [s for s in SPECS if s.database == database and "DATABASE_URL" in s.settings]
    seen = {
        tuple(SERVICES[spec.name]["environment"][key] for key in processes[0].settings)
        for spec in processes
    }
    assert len(processes) >= 3
    assert len(seen) == 1


def test_each_extracted_service_has_its_own_database_derived_from_the_monoliths():
    monolith_url = SERVICES["monolith"]["environment"]["DATABASE_URL"]
    for spec in SPECS:
        if spec.database != "monolith":
            environment = SERVICES[spec.name]["environment"]
            assert environment["DATABASE_URL"] == service_database_url(
                service=spec.database, database_url=monolith_url, var_dir=Path("/unused")
            )
            assert environment["MONOLITH_DATABASE_URL"] == monolith_url


def test_proxy_and_services_share_the_identity_secret():
    secrets = {
        SERVICES[spec.name]["environment"]["STRANGLER_IDENTITY_SECRET"]
        for spec in SPECS
        if "STRANGLER_IDENTITY_SECRET" in spec.settings
    }
    assert len(secrets) == 1


@by_name
def test_compose_process_waits_for_what_it_needs(spec):
    depends_on = SERVICES[spec.name].get("depends_on", {})
    expected = {job: "service_completed_successfully" for job in spec.after}
    expected |= {
        SERVERS[setting]: "service_healthy" for setting in spec.settings if setting in SERVERS
    }
    expected |= {
        other.name: "service_healthy"
        for other in SPECS
        if any(f"{{url[{other.name}]}}" in value for value in spec.env.values())
    }
    assert {name: dep["condition"] for name, dep in depends_on.items()} == expected


@pytest.mark.parametrize("spec", [s for s in SPECS if s.port], ids=lambda spec: spec.name)
def test_compose_http_process_publishes_its_port_and_checks_readyz(spec):
    service = SERVICES[spec.name]
    assert f"{spec.port}:{spec.port}" in service["ports"]
    probe = f"http://127.0.0.1:{spec.port}{spec.ready_path}"
    assert service["healthcheck"]["test"] == [
        "CMD",
        "python",
        "-m",
        "migrations_playbook.probe",
        probe,
    ]


def test_worker_healthcheck_pings_the_worker_by_its_name():
    test = " ".join(SERVICES["worker"]["healthcheck"]["test"])
    assert "inspect ping -d monolith@$$HOSTNAME" in test


@pytest.mark.parametrize(
    ("server", "command"),
    [
        ("postgres", "pg_isready"),
        ("rabbitmq", "rabbitmq-diagnostics"),
        ("redis", "redis-cli ping"),
    ],
)
def test_server_has_a_healthcheck(server, command):
    assert command in " ".join(SERVICES[server]["healthcheck"]["test"])


def test_rabbitmq_runs_the_management_image():
    assert SERVICES["rabbitmq"]["image"].endswith("-management")
