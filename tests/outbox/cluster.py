"""A throwaway RabbitMQ cluster of three nodes on this machine, for the fault tests.

Each node gets its own name, AMQP and distribution ports (free ones, bound to 127.0.0.1), data,
log, config and plugin files under one temporary folder owned by the `rabbitmq` user (when run
as root; as anyone else, by that user), and one Erlang cookie of its own (HOME points at the
folder), so the machine's own broker (rabbit@localhost on 5672/25672) is neither touched nor
joined. Nodes 2 and 3 join node 1 with `rabbitmqctl join_cluster`. `kill(i)` SIGKILLs a node's
process group; `start(i)` brings it back, and it rejoins by itself. `close()` kills everything
and removes the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SBIN_DIRS = ("/usr/lib/rabbitmq/bin",)


def rabbitmq_sbin() -> Path | None:
    """Return the folder of the real rabbitmq-server script (not Debian's su wrapper), or None."""
    for folder in SBIN_DIRS:
        if (Path(folder) / "rabbitmq-server").exists():
            return Path(folder)
    found = shutil.which("rabbitmq-server")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Node:
    name: str
    port: int
    dist_port: int
    folder: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"


class RabbitCluster:
    """Three RabbitMQ nodes clustered together; see the module docstring."""

    def __init__(self, size: int = 3) -> None:
        self.sbin = rabbitmq_sbin()
        if self.sbin is None:
            raise FileNotFoundError("rabbitmq-server is not installed on this machine")
        self.as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="strangler-cluster-"))
        self.home = self.root / "home"
        self.home.mkdir()
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20))
        cookie.chmod(0o400)
        tag = secrets.token_hex(3)
        self.nodes: list[Node] = []
        for index in range(size):
            folder = self.root / f"n{index + 1}"
            for sub in ("mnesia", "log"):
                (folder / sub).mkdir(parents=True)
            node = Node(
                f"strangler-t{tag}-{index + 1}@localhost", _free_port(), _free_port(), folder
            )
            (folder / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{node.port}\n")
            (folder / "enabled_plugins").write_text("[].\n")
            (folder / "rabbitmq-env.conf").write_text("")
            self.nodes.append(node)
        if self.as_root:
            user = pwd.getpwnam("rabbitmq")
            for path in [self.root, *self.root.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)

    # ------------------------------------------------------------------ processes
    def _env(self, node: Node) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(node.port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_MNESIA_BASE": str(node.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.folder / "log"),
            "RABBITMQ_CONFIG_FILE": str(node.folder / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.folder / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(node.folder / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(node.folder / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            # No busy-waiting schedulers: three nodes share two cores with everything else.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1} "
            "+sbwt none +sbwtdcpu none +sbwtdio none",
        }

    def _as_rabbitmq(self) -> dict:
        return {"user": "rabbitmq", "group": "rabbitmq", "extra_groups": []} if self.as_root else {}

    def ctl(self, node: Node, *args: str, tool: str = "rabbitmqctl", timeout: float = 60) -> str:
        """Run a RabbitMQ CLI tool against `node`; return its output (raise on failure)."""
        done = subprocess.run(
            [str(self.sbin / tool), "-n", node.name, *args],
            env=self._env(node),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            **self._as_rabbitmq(),
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} on {node.name}: {done.stderr[-800:]}")
        return done.stdout

    def start(self, index: int) -> None:
        """Start node `index` (0-based) in its own process group; do not wait."""
        node = self.nodes[index]
        log = open(node.folder / "server.out", "ab")  # noqa: SIM115 - the child keeps it
        node.process = subprocess.Popen(
            [str(self.sbin / "rabbitmq-server")],
            env=self._env(node),
            cwd=node.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **self._as_rabbitmq(),
        )
        log.close()

    def await_running(self, index: int, timeout: float = 90) -> None:
        """Wait until node `index` runs the broker application."""
        node = self.nodes[index]
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ctl(node, "await_startup", "--timeout", "30", timeout=45)
                return
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                if node.process is not None and node.process.poll() is not None:
                    out = (node.folder / "server.out").read_text(errors="replace")[-1500:]
                    raise RuntimeError(f"{node.name} exited: {out}") from exc
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def form(self) -> None:
        """Start every node and join the others to the first."""
        for index in range(len(self.nodes)):
            self.start(index)
        for index in range(len(self.nodes)):
            self.await_running(index)
        first = self.nodes[0].name
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first)
            self.ctl(node, "start_app")

    def kill(self, index: int) -> None:
        """SIGKILL node `index` and everything it started; return once it is gone."""
        process = self.nodes[index].process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        self.nodes[index].process = None

    def running(self) -> list[int]:
        return [i for i, node in enumerate(self.nodes) if node.process is not None]

    def connections(self) -> list[dict]:
        """Return every client connection of the cluster: its name, user and the node's port."""
        node = self.nodes[self.running()[0]]
        out = self.ctl(
            node, "list_connections", "client_properties", "port", "user", "--formatter", "json"
        )
        rows = json.loads(out or "[]")
        found = []
        for row in rows:
            properties = row.get("client_properties") or []
            name = next((p[2] for p in properties if p and p[0] == "connection_name"), "")
            found.append({"name": name, "port": row.get("port"), "user": row.get("user")})
        return found

    def node_of(self, connection_name: str) -> int | None:
        """Return the index of the node a connection named like `connection_name` is on."""
        for conn in self.connections():
            if connection_name in conn["name"]:
                for index, node in enumerate(self.nodes):
                    if node.port == conn["port"]:
                        return index
        return None

    @property
    def url(self) -> str:
        """Return a BROKER_URL listing every node (kombu's failover syntax)."""
        return ";".join(node.url for node in self.nodes)

    def close(self) -> None:
        for index in range(len(self.nodes)):
            with contextlib.suppress(Exception):
                self.kill(index)
        shutil.rmtree(self.root, ignore_errors=True)
