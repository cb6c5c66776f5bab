"""compose.yaml really runs: its app services on a Docker engine pass the contract suite.

The services run as compose.yaml writes them, on this machine's PostgreSQL, RabbitMQ and Redis
with host networking (compose_on_host.py says exactly what changes and why). Skipped, saying
why, where no Docker engine runs; `.ci/docker-engine` starts one in CI.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from migrations_playbook.compose_secrets import COMPOSE_SECRETS, env_file_read
from migrations_playbook.compose_secrets import main as secrets_main
from migrations_playbook.processes import processes_for

from .compose_file import COMPOSE_PATH, compose_load
from .compose_on_host import Servers, compose_running, host_plans
from .docker_support import (
    engine_or_skip,
    free_port,
    fresh_servers,
    project_image,
    servers_or_skip,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
UP_TIMEOUT_S = 240.0
HEALTHY_TIMEOUT_S = 150.0


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def _say(text: str) -> None:
    print(text, file=sys.stderr)


@pytest.fixture(scope="module")
def client():
    return engine_or_skip()


@pytest.fixture(scope="module")
def image(client):
    return project_image(client)


@pytest.fixture
def env_file(tmp_path) -> Path:
    path = tmp_path / ".env"
    assert secrets_main(["--env-file", str(path)]) == 0
    return path


def test_docker_compose_accepts_compose_yaml_only_with_every_secret(tmp_path, env_file):
    command = _compose_command()
    if command is None:
        pytest.skip("neither docker-compose nor `docker compose` is installed")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STRANGLER_")}
    empty = tmp_path / "empty.env"
    empty.write_text("")

    def config(env: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, "--env-file", str(env), "-f", str(COMPOSE_PATH), "config"],
            capture_output=True,
            text=True,
            env=environ,
            timeout=60,
        )

    refused = config(empty)
    assert refused.returncode != 0
    assert "is unset; run make secrets to write .env" in refused.stderr
    accepted = config(env_file)
    assert accepted.returncode == 0, accepted.stderr
    services = yaml.safe_load(accepted.stdout)["services"]
    secrets_written = env_file_read(env_file)
    assert (
        services["proxy"]["environment"]["STRANGLER_ADMIN_TOKEN"]
        == secrets_written["STRANGLER_ADMIN_TOKEN"]
    )
    assert set(secrets_written) == set(COMPOSE_SECRETS)


def test_compose_app_services_come_up_healthy_and_pass_the_contract_suite(
    client, image, env_file, tmp_path
):
    servers = servers_or_skip()
    compose = compose_load(env_file_read(env_file))
    step = compose["x-strangler-step"]
    services = sorted({spec.database for spec in processes_for(step)} - {"monolith"})
    ports = {
        name: free_port()
        for name, service in compose["services"].items()
        if service.get("ports") and name not in {"postgres", "rabbitmq", "redis"}
    }
    with fresh_servers(servers, label="compose", services=services) as ours:
        plans = host_plans(
            compose,
            servers=Servers(ours["DATABASE_URL"], ours["BROKER_URL"], ours["REDIS_URL"]),
            ports=ports,
        )
        with compose_running(
            client=client, image=image, plans=plans, timeout=UP_TIMEOUT_S, say=_say
        ) as stack:
            proxy_url = f"http://127.0.0.1:{ports['proxy']}"
            stack.wait_healthy(timeout=HEALTHY_TIMEOUT_S, only={"proxy", "payments"})
            # The playbook runs beside the proxy with what the proxy container was given: the
            # admin token, the databases (reconcile gate), the broker (outbox lag gate).
            walked = stack.containers["proxy"].exec_run(
                ["strangler", "playbook", "apply", str(step), "--to", "shadow",
                 "--proxy", proxy_url],
            )  # fmt: skip
            output = walked.output.decode("utf-8", "replace")
            assert walked.exit_code == 0, output
            assert "shadow" in output

            staff = (f"staff-{secrets.token_hex(4)}@compose.example.com", secrets.token_urlsafe(18))
            created = stack.containers["monolith"].exec_run(
                ["python", "manage.py", "createsuperuser", "--noinput"],
                environment={
                    "DJANGO_SUPERUSER_EMAIL": staff[0],
                    "DJANGO_SUPERUSER_PASSWORD": staff[1],
                },
            )
            assert created.exit_code == 0, created.output.decode("utf-8", "replace")

            suite_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
            suite_env |= {
                "STRANGLER_CONTRACT_URL": proxy_url,
                "STRANGLER_CONTRACT_STAFF_EMAIL": staff[0],
                "STRANGLER_CONTRACT_STAFF_PASSWORD": staff[1],
            }
            suite = subprocess.run(
                [sys.executable, "-m", "pytest", "tests/contract", "-q", "-p", "no:cacheprovider",
                 "-o", f"cache_dir={tmp_path / 'cache'}"],
                cwd=ROOT, env=suite_env, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            assert suite.returncode == 0, suite.stdout[-6000:] + suite.stderr[-2000:]
            assert " passed" in suite.stdout.splitlines()[-1]

            health = stack.wait_healthy(timeout=HEALTHY_TIMEOUT_S)
            assert set(health) == {
                spec.name for spec in processes_for(step) if spec.kind == "service"
            }
