"""What the Docker tests share: the engine (or a skip saying why), the image, fresh servers.

The image is tagged by a digest of its build context (the files .dockerignore lets through, by
content), so a run on an unchanged tree reuses the last build at no cost, and a changed tree
builds on Docker's layer cache (dependencies in their own layer: seconds). Only the three most
recent test images are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from migrations_playbook.compare.stack import _drop_databases, _rabbitmqctl
from migrations_playbook.containers import EngineError, docker_client, image_build
from migrations_playbook.databases import database_ensure

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "python:3.11-slim"
TEST_IMAGE_LABEL = "org.strangler.test-image"
KEEP_IMAGES = 3
SETUP_HINT = (
    "`.ci/docker-engine` starts one and builds the base image on a Debian machine (as root)"
)


def engine_or_skip() -> Any:
    """Return a client of the Docker engine, or skip the test saying why there is none."""
    try:
        return docker_client()
    except EngineError as exc:
        pytest.skip(f"no Docker engine: {exc}; {SETUP_HINT}")


def servers_or_skip() -> dict[str, str]:
    """Return DATABASE_URL, BROKER_URL and REDIS_URL when they name real servers, else skip."""
    env = {name: os.environ.get(name, "") for name in ("DATABASE_URL", "BROKER_URL", "REDIS_URL")}
    if not env["DATABASE_URL"].startswith("postgres"):
        pytest.skip("the containers need PostgreSQL: set DATABASE_URL=postgres://...")
    if not env["BROKER_URL"].startswith("amqp") or not shutil.which("rabbitmqctl"):
        pytest.skip("the containers need a local RabbitMQ: BROKER_URL=amqp://... and rabbitmqctl")
    if not env["REDIS_URL"].startswith("redis"):
        pytest.skip("the containers need Redis: set REDIS_URL=redis://...")
    return env


def context_digest(root: Path = ROOT) -> str:
    """Return a digest of the files `docker build` would send from `root`, by content."""
    from docker.utils.build import exclude_paths

    ignore = root / ".dockerignore"
    patterns = [
        line.strip()
        for line in (ignore.read_text().splitlines() if ignore.exists() else [])
        if line.strip() and not line.lstrip().startswith("#")
    ]
    digest = hashlib.sha256()
    for relative in sorted(exclude_paths(str(root), patterns, dockerfile="Dockerfile")):
        path = root / relative
        if path.is_file() and not path.is_symlink():
            digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def project_image(client: Any) -> str:
    """Return the tag of this tree's image, building it if no test run built it yet."""
    import docker

    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"the Dockerfile's base image {BASE_IMAGE} is not here; {SETUP_HINT}")
    tag = f"strangler:test-{context_digest()}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    image_build(
        client=client,
        tag=tag,
        say=lambda line: print(line, file=sys.stderr),
        labels={TEST_IMAGE_LABEL: "1"},
    )
    images = client.images.list(filters={"label": TEST_IMAGE_LABEL})
    images.sort(key=lambda image: image.attrs["Created"], reverse=True)
    for image in images[KEEP_IMAGES:]:
        for old in image.tags:
            if old != tag:
                # An image a container of another run still uses stays.
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(old)
    return tag


def free_port() -> int:
    """Return a TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def fresh_servers(
    env: dict[str, str], *, label: str, services: list[str]
) -> Iterator[dict[str, str]]:
    """Yield DATABASE_URL and BROKER_URL of a new database and vhost; drop both afterwards.

    `services` are the extracted services whose databases (`<db>_<service>`) go too.
    """
    token = secrets.token_hex(4)
    database = urlsplit(env["DATABASE_URL"])
    name = f"{database.path.lstrip('/') or 'strangler'}_{label}{token}"
    database_url = urlunsplit(database._replace(path=f"/{name}"))
    database_ensure(database_url)
    broker = urlsplit(env["BROKER_URL"])
    vhost = f"strangler-{label}-{token}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, broker.username or "guest", ".*", ".*", ".*")
        yield {
            "DATABASE_URL": database_url,
            "BROKER_URL": urlunsplit(broker._replace(path=f"/{vhost}")),
            "REDIS_URL": env["REDIS_URL"],
        }
    finally:
        _drop_databases(database_url, services)
        _rabbitmqctl("delete_vhost", vhost)
