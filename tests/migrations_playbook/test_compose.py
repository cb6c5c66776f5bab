"""compose.yaml starts the processes of `strangler up`, with the same commands and settings.

It ships no secret (each is a required variable that `strangler secrets` writes into .env) and
publishes nothing beyond 127.0.0.1. That compose.yaml really runs is proven by
test_compose_docker.py, which starts its app services on a Docker engine.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from migrations_playbook import compose_secrets
from migrations_playbook.compose_secrets import COMPOSE_SECRETS, env_file_read
from migrations_playbook.databases import service_database_url
from migrations_playbook.processes import Context, processes_for

from .compose_file import MissingVariable, compose_load, compose_raw, required_variables

ROOT = Path(__file__).resolve().parents[2]
# Stand-ins for the secrets of .env, each recognisable where it lands.
SECRETS = {name: f"{name.lower()}-0123456789" for name in COMPOSE_SECRETS}
COMPOSE = compose_load(SECRETS)
RAW = compose_raw()
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


@pytest.mark.parametrize("secret", sorted(COMPOSE_SECRETS))
def test_every_process_reading_a_secret_gets_the_one_from_env_file(secret):
    readers = [spec for spec in SPECS if secret in spec.settings]
    values = {SERVICES[spec.name]["environment"][secret] for spec in readers}
    assert values <= {SECRETS[secret]}


def test_compose_requires_exactly_the_secrets_strangler_secrets_writes():
    assert required_variables() == set(COMPOSE_SECRETS)


def _raw_values():
    """Yield (service, setting, value) for every setting and command argument, as written."""
    for name, service in RAW["services"].items():
        for key, value in service.get("environment", {}).items():
            yield name, key, str(value)
        command = service.get("command", [])
        for option, value in zip(["", *command], command, strict=False):
            yield name, option, str(value)


def test_compose_ships_no_secret_every_credential_is_a_required_variable():
    secretive = re.compile(r"PASSWORD|_PASS$|SECRET|TOKEN|AUTH|requirepass")
    required = re.compile(r".*\$\{STRANGLER_[A-Z_]+:\?[^}]+\}.*")
    shipped = [
        f"{service}: {key}"
        for service, key, value in _raw_values()
        if (secretive.search(key) or ("://" in value and urlsplit(value).password is not None))
        and not required.fullmatch(value)
    ]
    assert shipped == []
    # And every password a URL holds is one of the generated ones.
    for service in SERVICES.values():
        for value in service.get("environment", {}).values():
            if "://" in str(value) and urlsplit(str(value)).password is not None:
                assert urlsplit(str(value)).password in SECRETS.values()


def test_compose_without_secrets_refuses_to_start_naming_one():
    with pytest.raises(MissingVariable) as refused:
        compose_load({})
    assert refused.value.name in COMPOSE_SECRETS
    assert "make secrets" in str(refused.value)


def test_strangler_secrets_writes_every_variable_compose_needs(tmp_path):
    env_file = tmp_path / ".env"
    assert compose_secrets.main(["--env-file", str(env_file)]) == 0
    written = env_file_read(env_file)
    compose = compose_load(written)  # no MissingVariable
    proxy = compose["services"]["proxy"]["environment"]
    assert proxy["STRANGLER_ADMIN_TOKEN"] == written["STRANGLER_ADMIN_TOKEN"]


def test_servers_run_with_users_and_passwords_that_are_not_the_defaults():
    postgres = SERVICES["postgres"]["environment"]
    rabbitmq = SERVICES["rabbitmq"]["environment"]
    assert postgres["POSTGRES_USER"] not in {"postgres", ""}
    assert postgres["POSTGRES_PASSWORD"] == SECRETS["STRANGLER_POSTGRES_PASSWORD"]
    assert rabbitmq["RABBITMQ_DEFAULT_USER"] != "guest"
    assert rabbitmq["RABBITMQ_DEFAULT_PASS"] == SECRETS["STRANGLER_RABBITMQ_PASSWORD"]
    redis = SERVICES["redis"]["command"]
    assert redis[redis.index("--requirepass") + 1] == SECRETS["STRANGLER_REDIS_PASSWORD"]


def test_compose_publishes_ports_on_loopback_only():
    published = {
        name: [str(port) for port in service.get("ports", [])] for name, service in SERVICES.items()
    }
    assert all(
        mapping.startswith("127.0.0.1:") for mappings in published.values() for mapping in mappings
    ), published
    assert published["postgres"] == [] and published["redis"] == []
    assert [m.split(":")[-1] for m in published["rabbitmq"]] == ["15672"]  # the UI, not AMQP


def test_proxy_can_be_published_on_another_address_when_asked():
    compose = compose_load(SECRETS | {"STRANGLER_PROXY_PUBLISH_ADDRESS": "0.0.0.0"})
    assert compose["services"]["proxy"]["ports"] == ["0.0.0.0:8000:8000"]


@pytest.mark.parametrize("ignore_file", [".gitignore", ".dockerignore"])
def test_env_file_with_the_secrets_is_never_committed_nor_baked_into_the_image(ignore_file):
    patterns = (ROOT / ignore_file).read_text().split()
    assert ".env" in patterns


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
    assert f"127.0.0.1:{spec.port}:{spec.port}" in service["ports"]
    probe = f"http://127.0.0.1:{spec.port}{spec.ready_path}"
    assert service["healthcheck"]["test"] == [
        "CMD",
        "python",
        "-m",
        "migrations_playbook.probe",
        probe,
    ]


SERVICE_SPECS = [spec for spec in SPECS if spec.kind == "service"]


@pytest.mark.parametrize("spec", SERVICE_SPECS, ids=lambda spec: spec.name)
def test_every_long_running_process_has_the_runners_healthcheck_and_restarts(spec):
    service = SERVICES[spec.name]
    assert spec.health_argv(CONTEXT), f"{spec.name} has no health command"
    assert service["healthcheck"]["test"] == ["CMD", *spec.health_argv(CONTEXT)]
    assert service["restart"] == "unless-stopped"
    assert service["init"] is True  # a real PID 1 passes SIGTERM on


@pytest.mark.parametrize("spec", [s for s in SPECS if s.kind == "job"], ids=lambda s: s.name)
def test_jobs_run_once(spec):
    assert SERVICES[spec.name]["restart"] == "no"
    assert "healthcheck" not in SERVICES[spec.name]


def test_worker_healthcheck_pings_the_worker_by_its_node_name():
    command = SERVICES["worker"]["command"]
    node = command[command.index("-n") + 1]
    assert SERVICES["worker"]["healthcheck"]["test"][-2:] == ["monolith", node]


@pytest.mark.parametrize(
    ("server", "command"),
    [
        ("postgres", "pg_isready"),
        ("rabbitmq", "rabbitmq-diagnostics"),
        ("redis", "redis-cli ping"),
    ],
)
def test_server_has_a_healthcheck_and_restarts(server, command):
    assert command in " ".join(SERVICES[server]["healthcheck"]["test"])
    assert SERVICES[server]["restart"] == "unless-stopped"


def test_rabbitmq_runs_the_management_image():
    assert SERVICES["rabbitmq"]["image"].endswith("-management")
