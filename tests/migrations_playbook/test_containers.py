"""`strangler up --engine docker`: a step's processes as containers, run and stopped like natively.

The tests that need a Docker engine skip, saying why, where none runs (`.ci/docker-engine`
starts one in CI).
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from migrations_playbook import runner
from migrations_playbook.containers import (
    PROCESS_LABEL,
    STACK_LABEL,
    ContainerChild,
    DockerEngine,
    container_environment,
)
from migrations_playbook.processes import processes_for
from migrations_playbook.supervisor import LogWriter

from .docker_support import engine_or_skip, free_port, fresh_servers, project_image, servers_or_skip

STRANGLER = Path(sys.executable).with_name("strangler")


def _ports() -> list[str]:
    return ["--proxy-port", str(free_port()), "--monolith-port", str(free_port()),
            "--payments-port", str(free_port())]  # fmt: skip


def test_container_gets_the_stacks_settings_and_nothing_of_the_host():
    env = {
        "DATABASE_URL": "postgres://db",
        "BROKER_URL": "amqp://broker",
        "STRANGLER_IDENTITY_SECRET": "s",
        "OUTBOX_RELAY_POLL_S": "0.5",
        "DJANGO_SETTINGS_MODULE": "monolith.settings",
        "PATH": "/host/venv/bin:/usr/bin",
        "HOME": "/root",
        "VIRTUAL_ENV": "/host/venv",
    }
    assert container_environment(env) == {
        "DATABASE_URL": "postgres://db",
        "BROKER_URL": "amqp://broker",
        "STRANGLER_IDENTITY_SECRET": "s",
        "OUTBOX_RELAY_POLL_S": "0.5",
        "DJANGO_SETTINGS_MODULE": "monolith.settings",
    }


def test_up_refuses_an_unknown_engine_naming_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("STRANGLER_ENGINE", "podman")
    assert runner.main(["--var-dir", str(tmp_path), *_ports()]) == 2
    assert (
        "STRANGLER_ENGINE is 'podman'; expected one of: native, docker" in capsys.readouterr().err
    )


def test_up_refuses_build_without_the_docker_engine(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("STRANGLER_ENGINE", raising=False)
    assert runner.main(["--build", "--var-dir", str(tmp_path), *_ports()]) == 2
    assert "--build builds the image of --engine docker" in capsys.readouterr().err


def test_up_on_docker_without_an_engine_says_where_it_looked(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    status = runner.main(["--engine", "docker", "--var-dir", str(tmp_path), *_ports()])
    assert status == 2
    assert f"cannot reach the Docker engine at unix://{tmp_path}/no-engine.sock" in (
        capsys.readouterr().err
    )


def test_up_on_docker_without_the_image_says_how_to_build_it(capsys, tmp_path):
    engine_or_skip()
    image = f"strangler:missing-{uuid.uuid4().hex[:8]}"
    status = runner.main(
        ["--engine", "docker", "--image", image, "--var-dir", str(tmp_path), *_ports()]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert f"the image {image!r} does not exist; build it with `docker build" in err
    assert "or add --build" in err


@pytest.mark.integration
def test_container_child_reports_its_log_readiness_and_death_like_a_process(tmp_path):
    client = engine_or_skip()
    engine = DockerEngine(client=client, image=project_image(client), var_dir=tmp_path)
    out = io.StringIO()
    child = ContainerChild(
        name="dying",
        argv=["python", "-c", "import os, signal; print('up and ready', flush=True); "
              "os.kill(os.getpid(), signal.SIGKILL)"],
        env={"PATH": "/nowhere", "STRANGLER_X": "1"},
        log=LogWriter(names=["dying"], stream=out, colour=False),
        ready_log=r"ready",
        engine=engine,
    )  # fmt: skip
    child.start()
    deadline = time.monotonic() + 60
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    child.finish()
    assert child.log_said_ready.is_set()
    assert "dying | up and ready" in out.getvalue()
    assert child.exit_description() == "was killed by signal SIGKILL"
    assert engine.containers() == []  # removed once finished


@pytest.mark.integration
@pytest.mark.slow
def test_up_on_docker_runs_step_1_as_containers_and_stops_them_all(tmp_path):
    client = engine_or_skip()
    servers = servers_or_skip()
    image = project_image(client)
    ports = {name: free_port() for name in ("proxy", "monolith", "payments")}
    with fresh_servers(servers, label="up", services=["payments"]) as ours:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("STRANGLER_")}
        environ |= ours | {"NO_COLOR": "1", "STRANGLER_FAST_PASSWORD_HASHER": "1"}
        command = [str(STRANGLER), "up", "--engine", "docker", "--image", image, "--step", "1",
                   "--var-dir", str(tmp_path / "var"), "--ready-timeout", "120"]  # fmt: skip
        command += [arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]
        log = tmp_path / "up.log"
        with log.open("w") as out:
            up = subprocess.Popen(command, env=environ, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
        try:
            _wait_for(log, r"all \d+ processes ready in", up, timeout=200)
            text = log.read_text()
            stack_id = re.search(r"container strangler-([0-9a-f]+)-monolith", text).group(1)
            containers = client.containers.list(filters={"label": f"{STACK_LABEL}={stack_id}"})
            expected = {s.name for s in processes_for(1) if s.kind == "service"}
            assert {c.labels[PROCESS_LABEL] for c in containers} == expected
            assert {c.attrs["HostConfig"]["NetworkMode"] for c in containers} == {"host"}

            # Through the containerized proxy to the containerized monolith, as a client would.
            proxy = f"http://127.0.0.1:{ports['proxy']}"
            email = f"docker-{uuid.uuid4().hex[:8]}@example.com"
            status, _, _ = _post(
                f"{proxy}/api/users/", {"email": email, "password": "s3cret-Passw0rd!x"}
            )
            assert status == 201
            status, headers, body = _post(
                f"{proxy}/api/auth/token/", {"email": email, "password": "s3cret-Passw0rd!x"}
            )
            assert status == 200 and "token" in body
            assert headers["X-Strangler-Upstream"] == "monolith"
            ready = requests.get(f"http://127.0.0.1:{ports['payments']}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
            # The var dir is shared with the host and written as the invoking user.
            assert (tmp_path / "var" / "playbook" / "routes.toml").stat().st_uid == os.getuid()
        finally:
            up.send_signal(signal.SIGINT)
            status = up.wait(timeout=60)
        assert status == 0, log.read_text()[-3000:]
        assert "all processes stopped" in log.read_text()
        assert (
            client.containers.list(all=True, filters={"label": f"{STACK_LABEL}={stack_id}"}) == []
        )


def _wait_for(log: Path, pattern: str, process: subprocess.Popen, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, log.read_text()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no {pattern!r} in the runner's log:\n{log.read_text()[-4000:]}")
        time.sleep(0.25)


def _post(url: str, payload: dict) -> tuple[int, dict, dict]:
    response = requests.post(url, json=payload, timeout=30)
    return response.status_code, dict(response.headers), response.json()
