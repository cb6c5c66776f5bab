"""compose.yaml starts the processes of `strangler up`, with the same commands and settings."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from migrations_playbook.processes import MONOLITH_SETTINGS, Context, processes_for

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
STEP = COMPOSE["x-strangler-step"]
SPECS = processes_for(STEP)
SERVERS = {"DATABASE_URL": "postgres", "BROKER_URL": "rabbitmq", "REDIS_URL": "redis"}
# Inside compose each process listens on all interfaces and reaches the others by service name.
CONTEXT = Context(
    bind="0.0.0.0",
    ports={spec.name: spec.port for spec in SPECS if spec.port is not None},
    hosts={spec.name: spec.name for spec in SPECS},
)
by_name = pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)


def test_compose_runs_exactly_the_processes_of_its_step_beside_the_servers():
    assert set(SERVICES) == {spec.name for spec in SPECS} | set(SERVERS.values())


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
    hosts = {setting: urlsplit(environment[setting]).hostname for setting in spec.settings}
    assert hosts == {setting: SERVERS[setting] for setting in spec.settings}


def test_monolith_processes_share_one_database_broker_and_redis():
    monolith_processes = [spec for spec in SPECS if spec.settings == MONOLITH_SETTINGS]
    seen = {
        tuple(SERVICES[spec.name]["environment"][key] for key in MONOLITH_SETTINGS)
        for spec in monolith_processes
    }
    assert len(monolith_processes) >= 3
    assert len(seen) == 1


@by_name
def test_compose_process_waits_for_what_it_needs(spec):
    depends_on = SERVICES[spec.name].get("depends_on", {})
    expected = {job: "service_completed_successfully" for job in spec.after}
    expected |= {SERVERS[setting]: "service_healthy" for setting in spec.settings}
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
