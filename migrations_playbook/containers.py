"""The stack's processes as containers, through the Docker SDK: `strangler up --engine docker`.

Each process of a step (`migrations_playbook.processes`) runs in a container of the project's
image (`strangler:local` unless told otherwise; `docker build --network host -t strangler:local
.`, `docker compose build` or `strangler up --engine docker --build` makes it) with the same
command and settings as natively, and:

* host networking: a process listens on the host's 127.0.0.1 at its usual port and reaches
  PostgreSQL, RabbitMQ and Redis at the URLs a native process would use, so the runner checks
  ports and readiness exactly as it does natively, and native and containerized stacks can run
  side by side on other ports;
* the var dir bind-mounted at the same path: SQLite files, the embedded broker, the route table
  and the playbook state are shared by the containers and by native tools (`strangler
  playbook`, `compare`), and written as the invoking user (the containers run with its uid);
* docker-init as PID 1, which passes SIGTERM on, so a stop is as graceful as natively;
* only the environment the stack reads (`PASSED_NAMES` and the `STRANGLER_*`, `OUTBOX_*`
  variables): the host's PATH, HOME or virtualenv mean nothing inside the image;
* the label ``org.strangler.stack=<id>`` and the name ``strangler-<id>-<process>``.

The runner removes the containers when it stops them. A runner killed with SIGKILL cannot: its
containers keep running until ``docker rm -f $(docker ps -aq --filter label=org.strangler.stack)``.
The image holds the code it was built from: rebuild it after a change (``--build``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import secrets
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from migrations_playbook.supervisor import LogWriter

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMAGE = "strangler:local"
STACK_LABEL = "org.strangler.stack"
PROCESS_LABEL = "org.strangler.process"
#: The variables a container receives by name; every STRANGLER_* and OUTBOX_* one too.
PASSED_NAMES = frozenset(
    {
        "DATABASE_URL",
        "MONOLITH_DATABASE_URL",
        "BROKER_URL",
        "REDIS_URL",
        "DJANGO_SETTINGS_MODULE",
        "PYTHONUNBUFFERED",
        "NO_COLOR",
    }
)
PASSED_PREFIXES = ("STRANGLER_", "OUTBOX_")


ENGINES = ("native", "docker")


class EngineError(Exception):
    """The Docker engine cannot do what the stack needs; the message says what to do."""


def engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `strangler up`'s --engine, --image and --build to `parser`."""
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        help="run the processes natively or as Docker containers of --image "
        "(default: $STRANGLER_ENGINE or native)",
    )
    parser.add_argument(
        "--image",
        metavar="NAME",
        help=f"the image of --engine docker (default: $STRANGLER_IMAGE or {DEFAULT_IMAGE})",
    )
    parser.add_argument(
        "--build",
        action="store_true",
        help="with --engine docker: build --image from this checkout's Dockerfile first",
    )


def engine_open(args: argparse.Namespace, *, environ: dict[str, str], var_dir: Path,
                say: Callable[[str], None]) -> DockerEngine | None:  # fmt: skip
    """Return the Docker engine `args` ask for, or None to run natively; raise EngineError."""
    engine = args.engine or environ.get("STRANGLER_ENGINE") or "native"
    if engine not in ENGINES:
        raise EngineError(f"STRANGLER_ENGINE is {engine!r}; expected one of: {', '.join(ENGINES)}")
    if engine == "native":
        if args.build:
            raise EngineError("--build builds the image of --engine docker; add --engine docker")
        return None
    image = args.image or environ.get("STRANGLER_IMAGE") or DEFAULT_IMAGE
    return DockerEngine.connect(image=image, var_dir=var_dir, build=args.build, say=say)


def container_environment(env: dict[str, str]) -> dict[str, str]:
    """Return the part of `env` a container receives."""
    return {
        key: value
        for key, value in env.items()
        if key in PASSED_NAMES or key.startswith(PASSED_PREFIXES)
    }


def docker_client() -> Any:
    """Return a Docker SDK client of the engine DOCKER_HOST names (else the local socket)."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise EngineError(
            "the Docker SDK for Python is not installed (pip install -e . installs it)"
        ) from exc
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineError(f"cannot reach the Docker engine at {where}: {exc}") from exc
    return client


def image_build(*, client: Any, tag: str, say: Callable[[str], None], path: Path = PROJECT_ROOT,
                labels: dict[str, str] | None = None) -> str:  # fmt: skip
    """Build the project's Dockerfile at `path` as `tag`, saying each step; return the image id.

    The build uses the host's network (the engines this project runs on have no bridge).
    """
    import docker

    image_id = None
    try:
        for chunk in client.api.build(
            path=str(path), tag=tag, network_mode="host", rm=True, decode=True, labels=labels
        ):
            if "error" in chunk:
                raise EngineError(f"building {tag} failed: {chunk['error'].strip()}")
            line = chunk.get("stream", "").strip()
            if line.startswith("Step "):
                say(f"build {tag}: {line}")
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            if match := re.match(r"Successfully built ([0-9a-f]+)", line):
                image_id = image_id or match.group(1)
    except docker.errors.DockerException as exc:
        raise EngineError(f"building {tag} failed: {exc}") from exc
    if image_id is None:
        raise EngineError(f"building {tag} gave no image")
    return image_id


class DockerEngine:
    """Start the processes of one stack as containers of `image`, sharing `var_dir`."""

    def __init__(self, *, client: Any, image: str, var_dir: Path) -> None:
        self.client = client
        self.image = image
        self.var_dir = str(Path(var_dir).resolve())
        self.stack_id = secrets.token_hex(4)

    @classmethod
    def connect(cls, *, image: str, var_dir: Path, build: bool = False,
                say: Callable[[str], None] = lambda text: None) -> DockerEngine:  # fmt: skip
        """Return an engine for `image`, building it first when `build`; raise EngineError."""
        import docker

        client = docker_client()
        if build:
            image_build(client=client, tag=image, say=say)
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            raise EngineError(
                f"the image {image!r} does not exist; build it with "
                f"`docker build --network host -t {image} .` in {PROJECT_ROOT}, "
                "or add --build"
            ) from None
        return cls(client=client, image=image, var_dir=var_dir)

    def child(self, *, name: str, argv: list[str], env: dict[str, str], log: LogWriter,
              ready_log: str | None) -> ContainerChild:  # fmt: skip
        """Return the (not yet started) container of process `name`."""
        return ContainerChild(
            name=name, argv=argv, env=env, log=log, ready_log=ready_log, engine=self
        )

    def containers(self) -> list[Any]:
        """Return every container of this stack, running or not."""
        return self.client.containers.list(
            all=True, filters={"label": f"{STACK_LABEL}={self.stack_id}"}
        )


class ContainerChild:
    """One process in a container; the same interface as `supervisor.Child`."""

    def __init__(self, *, name: str, argv: list[str], env: dict[str, str], log: LogWriter,
                 ready_log: str | None, engine: DockerEngine) -> None:  # fmt: skip
        self.name = name
        self.argv = argv
        self.env = container_environment(env)
        self.log = log
        self.engine = engine
        self.container_name = f"strangler-{engine.stack_id}-{name}"
        self.ready_pattern = re.compile(ready_log) if ready_log else None
        self.log_said_ready = threading.Event()
        self.last_lines: collections.deque[str] = collections.deque(maxlen=15)
        self.container: Any = None
        self._status: int | None = None
        self._threads: list[threading.Thread] = []

    @property
    def handle(self) -> str:
        """Say how to find this process: the container's name."""
        return f"container {self.container_name}"

    def start(self) -> None:
        """Create and start the container; follow its log and its exit."""
        import docker

        try:
            self.container = self.engine.client.containers.run(
                self.engine.image,
                self.argv,
                detach=True,
                name=self.container_name,
                environment=self.env,
                network_mode="host",
                init=True,
                user=f"{os.getuid()}:{os.getgid()}",
                volumes={self.engine.var_dir: {"bind": self.engine.var_dir, "mode": "rw"}},
                labels={STACK_LABEL: self.engine.stack_id, PROCESS_LABEL: self.name},
            )
        except docker.errors.DockerException as exc:
            raise EngineError(f"cannot start the container of {self.name}: {exc}") from exc
        for target, what in ((self._copy_output, "log"), (self._wait, "wait")):
            thread = threading.Thread(target=target, name=f"{what}-{self.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _lines(self) -> Iterator[str]:
        pending = b""
        with contextlib.suppress(Exception):  # the container was removed under the stream
            for chunk in self.container.logs(stream=True, follow=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    yield raw.decode("utf-8", "replace").rstrip("\r")
        if pending:
            yield pending.decode("utf-8", "replace").rstrip("\r")

    def _copy_output(self) -> None:
        for text in self._lines():
            self.last_lines.append(text)
            self.log.line(self.name, text)
            if self.ready_pattern and self.ready_pattern.search(text):
                self.log_said_ready.set()

    def _wait(self) -> None:
        try:
            # No time limit: a service waits here for as long as it runs.
            self._status = int(self.container.wait(timeout=None)["StatusCode"])
        except Exception:  # removed, or the engine went away: either way it is gone
            self._status = 128 + signal.SIGKILL

    def poll(self) -> int | None:
        """Return the container's exit status once it has ended, else None."""
        return self._status

    def exit_description(self) -> str:
        """Say how the process ended, as `supervisor.Child` does."""
        code = self.poll()
        if code is None:
            return "is still running"
        # docker-init exits 128+N when its child was killed by signal N.
        if code > 128:
            with contextlib.suppress(ValueError):
                return f"was killed by signal {signal.Signals(code - 128).name}"
        return f"exited with code {code}"

    def signal_leader(self, signum: int) -> None:
        """Send `signum` to the container's process (through docker-init)."""
        if self.container is not None and self.poll() is None:
            with contextlib.suppress(Exception):
                self.container.kill(signal=int(signum))

    def group_alive(self) -> bool:
        """Return True while the container runs."""
        return self.container is not None and self.poll() is None

    def kill_group(self) -> None:
        """Kill the container."""
        self.signal_leader(signal.SIGKILL)

    def finish(self, timeout: float = 2.0) -> None:
        """Wait for the exit and the last log lines, then remove the container."""
        for thread in self._threads:
            thread.join(timeout=timeout)
        if self.container is not None and self.poll() is not None:
            with contextlib.suppress(Exception):
                self.container.remove(force=True)
