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
import time
from pathlib import Path

import pytest
import yaml

from migrations_playbook.compare.results import BAD
from migrations_playbook.compare.suite import Staff, suite_run
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


_STARTED = time.monotonic()


def _say(text: str) -> None:
    print(f"{time.monotonic() - _STARTED:6.1f}s {text}", file=sys.stderr)


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
            _say("compose: the proxy and the payments service are healthy")
            # The playbook runs beside the proxy with what the proxy container was given: the
            # admin token, the databases (reconcile gate), the broker (outbox lag gate).
            walked = stack.containers["proxy"].exec_run(
                ["strangler", "playbook", "apply", str(step), "--to", "shadow",
                 "--proxy", proxy_url],
            )  # fmt: skip
            output = walked.output.decode("utf-8", "replace")
            assert walked.exit_code == 0, output
            assert "shadow" in output
            _say("compose: step 1 walked to shadow from the proxy container")

            staff = (f"staff-{secrets.token_hex(4)}@compose.example.com", secrets.token_urlsafe(18))
            created = stack.containers["monolith"].exec_run(
                ["python", "manage.py", "createsuperuser", "--noinput"],
                environment={
                    "DJANGO_SUPERUSER_EMAIL": staff[0],
                    "DJANGO_SUPERUSER_PASSWORD": staff[1],
                },
            )
            assert created.exit_code == 0, created.output.decode("utf-8", "replace")

            # The contract suite as the playbook's gate and compare run it: a test that fails
            # is run once more, and only one that fails twice counts (one that passes the
            # second time is reported as flaky, as compare does).
            run = suite_run(
                label="compose", base_url=proxy_url, out_dir=tmp_path / "contract",
                staff=Staff(*staff),
            )  # fmt: skip
            assert run.error is None, run.error
            outcomes = {name: test.outcome for name, test in run.tests.items()}
            failed = sorted(name for name, outcome in outcomes.items() if outcome in BAD)
            assert failed == [], Path(run.log).read_text()[-6000:]
            assert list(outcomes.values()).count("passed") >= 150
            flaky = sorted(name for name, outcome in outcomes.items() if outcome == "flaky")
            if flaky:
                _say(f"compose: flaky through the containerized proxy: {', '.join(flaky)}")

            _say(f"compose: contract suite {run.duration:.1f} s")
            health = stack.wait_healthy(timeout=HEALTHY_TIMEOUT_S)
            _say("compose: every service is healthy")
            assert set(health) == {
                spec.name for spec in processes_for(step) if spec.kind == "service"
            }
