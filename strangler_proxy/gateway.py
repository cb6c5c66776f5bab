"""The gateway: build the proxy's parts from its settings, wire them, start and stop them.

The one module that knows every part (see docs/proxy.md for the layer diagram)::

    FrontServer (server.py) -> Pipeline (pipeline.py) -> FastPath (fastpath.py)
                                                     -> Forwarder (forwarding.py) -> upstreams
    admin API (admin.py) on top, mounted on the pipeline under /_strangler
    TableStore (tables.py): the table in force; UpstreamPools (upstreams.py): its instances

Each part receives the small interfaces it needs (interfaces.py, admin_data.AdminSources);
none receives the gateway. What runs in the background of one process: the front server's sweep
of idle connections, the fast path's timeouts and the access log's flush (every 50 ms), the
pools' discovery refresh and health checks (every second), with ``--workers`` the shared table
(every 50 ms) and the published metrics (every second), with Redis the revocation channel.

A ``Gateway`` also answers the questions tests and the benchmark ask of a running proxy
(``table``, ``changes``, ``metrics``, ``pools``, ``fast_served``...).
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from .accesslog import AccessLog
from .admin import AdminApi, AdminTokens
from .admin_data import AdminSources
from .auth import EdgeAuth
from .auth_events import AuthEvents
from .config import ADMIN_HOLDER, ProxyConfig
from .discovery import registry_from_url
from .fastclient import FastPool
from .fastpath import FastPath
from .forwarding import Forwarder
from .headers import RequestIds
from .metrics import Metrics
from .pipeline import Pipeline
from .ratelimit import MemoryBuckets, RedisBuckets
from .recording import Recorder
from .redaction import Redactor
from .revocation import RedisRevocations
from .routes import MONOLITH, Route, RouteTable, step0_table, table_from_file
from .server import FrontServer
from .shadow import ShadowRunner
from .sharing import (
    METRICS_SECONDS,
    POLL_SECONDS,
    shared_metrics_from_config,
    shared_revocations_from_config,
    shared_table_from_config,
)
from .signing import IdentitySigner
from .tables import TableStore
from .upstreams import UpstreamPools

UPKEEP_SECONDS = 0.05  # fast-path timeouts are swept, and the access log flushed, this often


class Gateway:
    """One proxy process: its parts, wired; ``start`` listens, ``close`` stops everything."""

    def __init__(
        self, *, config: ProxyConfig, table: RouteTable | None = None, registry=None, limiter=None
    ):
        self.config = config
        self.metrics = Metrics()
        self.pools = UpstreamPools(monolith_url=config.monolith_url)
        self.store = TableStore(
            table or _initial_table(config), routes_file=config.routes_file,
            monolith_url=config.monolith_url, shared=shared_table_from_config(config),
            on_install=self.pools.install,
        )  # fmt: skip
        self.registry = registry if registry is not None else registry_from_url(config.redis_url)
        self.limiter = limiter or (
            RedisBuckets(config.redis_url) if config.redis_url else MemoryBuckets()
        )
        self.revocations = shared_revocations_from_config(config)
        self.auth = EdgeAuth(ttl=config.auth_cache_ttl, shared=self.revocations)
        self.revoke_channel = (
            RedisRevocations(config.redis_url, channel=config.revoke_channel, auth=self.auth)
            if config.redis_url
            else None
        )
        events = AuthEvents(
            auth=self.auth, limiter=self.limiter, shared=self.revocations,
            channel=self.revoke_channel, login=config.login, logout=config.logout,
            password_change=config.password_change,
        )  # fmt: skip
        signer = IdentitySigner(config.identity_keys(), ttl=config.identity_ttl)
        # The one deny-list of what is never stored (recordings, diffs, their replays).
        self.redactor = Redactor(headers=config.redact_headers, fields=config.redact_fields)
        self.recorder = Recorder(
            size=config.record_buffer, body_limit=config.record_body_limit,
            directory=config.record_dir,
        )  # fmt: skip
        self.log = AccessLog(self.metrics, enabled=config.access_log)
        self.fast = FastPool()
        self.forwarder = Forwarder(
            pools=self.pools, fast=self.fast, metrics=self.metrics, log=self.log, signer=signer,
            mirror=None, recorder=self.recorder, redactors=self.redactor_for, events=events,
            tables=self.store, body_idle_timeout=config.body_idle_timeout,
            capture_limit=config.shadow_body_limit,
        )  # fmt: skip
        self.shadow = ShadowRunner(
            upstreams=self.forwarder, metrics=self.metrics, redactors=self.redactor_for,
            monolith_url=self._monolith_instance, concurrency=config.shadow_concurrency,
            pools=self.pools, fast=self.fast, body_limit=config.shadow_body_limit,
        )  # fmt: skip
        self.forwarder.mirror = self.shadow
        request_ids = RequestIds()
        self.fast_path = FastPath(
            tables=self.store, auth=self.auth, forwarder=self.forwarder, pool=self.fast,
            signer=signer, log=self.log, metrics=self.metrics, request_ids=request_ids,
            aggregate_path=config.aggregate_path, mirror=self.shadow,
        )  # fmt: skip
        self.shared_metrics = shared_metrics_from_config(config)
        tokens = AdminTokens(
            [*([(ADMIN_HOLDER, config.admin_token)] if config.admin_token else []),
             *config.admin_holders]
        )  # fmt: skip
        self.admin = AdminApi(
            AdminSources(
                tables=self.store, tokens=tokens, figures=self.metrics_view,
                instances=self.pools.instances, registry=self.registry, shadow=self.shadow,
                recorder=self.recorder, monolith_url=config.monolith_url,
            )
        )  # fmt: skip
        self.pipeline = Pipeline(
            tables=self.store, auth=self.auth, events=events, limiter=self.limiter,
            forwarder=self.forwarder, fast=self.fast_path, signer=signer, metrics=self.metrics,
            request_ids=request_ids, admin=self.admin, aggregate_path=config.aggregate_path,
            record_body_limit=config.record_body_limit,
        )  # fmt: skip
        self.server = FrontServer(
            self.pipeline, keepalive_timeout=config.keepalive_timeout,
            head_timeout=config.head_timeout, linger=config.linger,
        )  # fmt: skip
        self._background: list[asyncio.Task] = []

    # ----------------------------------------------------------------- what tests ask
    @property
    def table(self) -> RouteTable:
        return self.store.table

    @property
    def changes(self):
        return self.store.changes

    @property
    def fast_served(self) -> int:
        """Requests the fast path took."""
        return self.fast_path.served

    def table_swap(self, **change) -> RouteTable:
        """Install a new table (tables.TableStore.swap)."""
        return self.store.swap(**change)

    @staticmethod
    def choose_target(route: Route, identity, remote: str | None) -> str:
        """Return the service that serves `route` for this caller (routes.Route.target)."""
        return route.target(identity, remote)

    def redactor_for(self, route: Route) -> Redactor:
        """Return the deny-list of `route`: the proxy's, plus what the route adds."""
        return self.redactor.extended(headers=route.redact_headers, fields=route.redact_fields)

    def metrics_view(self) -> tuple[Metrics, dict[str, str]]:
        """Return the metrics and breaker states to report: this worker's, or with --workers,
        the sum over every worker and each instance's worst breaker state."""
        breakers = self.pools.breakers()
        if self.shared_metrics is None:
            return self.metrics, breakers
        return self.shared_metrics.view(self.metrics, breakers)

    def _monolith_instance(self) -> str:
        pool = self.pools.get(MONOLITH)
        return pool.instances[0].url if pool and pool.instances else ""

    # ----------------------------------------------------------------- lifecycle
    async def start(
        self, *, host: str | None = None, port: int | None = None, reuse_port: bool = False
    ) -> int:
        """Open the upstream client, listen and start the background work; return the port."""
        self.forwarder.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0, limit_per_host=0, keepalive_timeout=30, ttl_dns_cache=300
            ),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )
        bound = await self.server.start(
            host or self.config.host, self.config.port if port is None else port,
            reuse_port=reuse_port,
        )  # fmt: skip
        spawn = asyncio.get_running_loop().create_task
        self._background.append(
            spawn(self.pools.maintain(registry=self.registry, session=self.forwarder.session))
        )
        self._background.append(spawn(self._upkeep()))
        if self.store.shared is not None:
            self.store.sync()  # a worker started late adopts the table in force
            self._background.append(spawn(self.store.follow(POLL_SECONDS)))
        if self.shared_metrics is not None:
            self._background.append(spawn(self._publish_metrics()))
        if self.revoke_channel is not None:
            await self.revoke_channel.start()
        return bound

    async def close(self) -> None:
        """Stop listening, let mirrors finish (1 s at most), close everything."""
        for task in self._background:
            task.cancel()
        self.log.flush()
        self.server.stop_listening()
        await self.shadow.drain(timeout=1.0)
        self.shadow.abandon()
        if self.shared_metrics is not None:
            self._publish_own_metrics()  # the last figures, shadow comparisons included
        self.server.close_connections()
        if self.forwarder.session is not None:
            await self.forwarder.session.close()
        self.fast.close()
        self.log.flush()
        await self.registry.close()
        await self.limiter.close()
        if self.revoke_channel is not None:
            await self.revoke_channel.close()
        if self.revocations is not None:
            self.revocations.close()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _upkeep(self) -> None:
        """Every 50 ms: time out late fast-path exchanges and mirrors, write the access log."""
        while True:
            await asyncio.sleep(UPKEEP_SECONDS)
            self.log.flush()
            self.fast_path.expire()
            self.shadow.expire()

    def _publish_own_metrics(self) -> None:
        self.shared_metrics.publish_safely(
            self.metrics.snapshot() | {"breakers": self.pools.breakers()}
        )

    async def _publish_metrics(self) -> None:
        """Every second: write this worker's metrics for the other workers' scrapes."""
        while True:
            await asyncio.sleep(METRICS_SECONDS)
            self._publish_own_metrics()


def _initial_table(config: ProxyConfig) -> RouteTable:
    if config.routes_file:
        return table_from_file(config.routes_file, monolith_url=config.monolith_url)
    return step0_table(config.monolith_url)
