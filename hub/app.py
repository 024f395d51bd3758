"""`create_app(settings)`: the hub's aiohttp application and its resources.

Resources are cleanup contexts, started in order and closed in reverse: the
database worker (which also makes sure a signed directory exists), the push
registry, the directory announcer, the directory publisher, and the
maintenance task. Nothing lives at module level.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import structlog
from aiohttp import web

from hub import problems
from hub.auth import NonceMemory
from hub.context import (
    ANNOUNCER,
    DB,
    DEPS,
    KEYS,
    METRICS,
    NONCES,
    PUBLISHER,
    PUSH,
    SETTINGS,
)
from hub.errors import Problem, StorageFull
from hub.handlers import add_routes
from hub.keyfile import read_keys
from hub.maintenance import maintenance_ctx, publish_owed, refresh_directory
from hub.metrics import Metrics
from hub.publisher import DirectoryPublisher
from hub.push import DirectoryAnnouncer, PushRegistry
from hub.settings import HubSettings
from hub.storage.db import disk_full, open_worker
from hub.storage.engine import Db
from hub.storage.listen import listen
from protocol.hub_api import ProblemKind
from support.clock import Deps
from support.files import restrict_directory
from support.tasks import stop

log = structlog.get_logger()
# How often /health's view of the database is renewed, and how long an answer may take.
PROBE_INTERVAL = 2.0
PROBE_TIMEOUT = 2.0
# How long a stopping hub waits for the directory version its enrollments asked for.
STOP_FLUSH_S = 5.0
# The server's longest request line (aiohttp's default is 8190 bytes). Longer, so a
# long query string (a coordinator's pasted link, an attacker's 100 KB) reaches the
# handlers and gets their answer: a German page or a problem, not the parser's
# plain-text 400. Bodies have their own limits.
MAX_LINE_SIZE = 256 * 1024
SERVER_LIMITS: dict[str, Any] = {"max_line_size": MAX_LINE_SIZE}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every refusal into problem+json and count requests by route and status."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    try:
        response = await handler(request)
    except Problem as p:
        # A full disk is logged by the database worker, once a minute, not here.
        if p.status >= 500 and not isinstance(p, StorageFull):
            log.error("http.problem", route=route, kind=p.kind)
        else:
            log.info("http.refused", route=route, kind=p.kind, status=p.status)
        response = problems.response(p)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = problems.response(problems.from_http(exc))
    except ConnectionError:
        # The client went away (e.g. mid-body): nothing broken, and the answer
        # will most likely not arrive; no traceback for it.
        log.info("http.client_gone", route=route)
        response = problems.response(
            Problem(ProblemKind.MALFORMED, 400, "the connection closed before the request ended")
        )
    except Exception as exc:  # the request boundary: answer 500 and log the traceback
        if disk_full(exc):
            # A file written outside the database worker (ENOSPC): as there.
            request.app[DB].full_log.note(route)
            response = problems.response(StorageFull())
            request.app[METRICS].count(route, request.method, response.status)
            return response
        log.error("http.internal_error", route=route, error=type(exc).__name__, exc_info=True)
        response = problems.response(
            Problem(ProblemKind.INTERNAL, 500, "the hub failed to handle this request; see its log")
        )
    request.app[METRICS].count(route, request.method, response.status)
    return response


async def db_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if restrict_directory(settings.data_dir):
        # Like the key and the database: nothing in the data directory is for others.
        log.warning("datadir.mode_restricted", mode="0700")
    worker = open_worker(
        settings.db_path, settings.database.postgres_url, settings.database.pool_size
    )
    app[DB] = worker
    version = await worker.run(refresh_directory, app[KEYS], settings, app[DEPS].clock.now())
    if version is not None:
        log.info("directory.resigned", version=version)
    yield
    worker.close()


def _ping(db: Db) -> None:
    db.execute("SELECT 1").fetchone()


async def probe(app: web.Application) -> bool:
    """Whether the database answers within PROBE_TIMEOUT; recorded for /health."""
    metrics = app[METRICS]
    try:
        await asyncio.wait_for(app[DB].read(_ping), PROBE_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 -- any failure means "not reachable"; the type is logged
        if metrics.reachable:
            log.warning("db.unreachable", error=type(exc).__name__)
        metrics.reachable = False
        return False
    if not metrics.reachable:
        log.info("db.reachable")
    metrics.reachable = True
    return True


async def probe_ctx(app: web.Application) -> AsyncIterator[None]:
    """Probe the database every PROBE_INTERVAL seconds for /health and /metrics."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            await probe(app)

    task = asyncio.create_task(loop(), name="hub-db-probe")
    yield
    await stop(task)


async def listen_ctx(app: web.Application) -> AsyncIterator[None]:
    """On PostgreSQL: hear what the other hub processes commit (hub/storage/listen.py)."""
    pool = app[DB].pool
    if pool is None:
        yield
        return
    push, announcer = app[PUSH], app[ANNOUNCER]

    async def on_notice(kind: str, items: list[str]) -> None:
        if kind == "mail":
            await push.notify(items)
        elif kind == "directory":
            await announcer.check()

    async def on_connect() -> None:
        # Notices sent while this process was not listening are lost: every
        # connected node looks at its inbox once, and the directory is checked.
        await push.notify(push.node_ids)
        await announcer.check()

    task = asyncio.create_task(listen(pool.url, pool.tag, on_notice, on_connect), name="hub-listen")
    yield
    await stop(task)


async def push_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[PUSH].close_all()


async def announcer_ctx(app: web.Application) -> AsyncIterator[None]:
    """Announce new directory versions to connected nodes (docs/hub-api.md)."""
    announcer = DirectoryAnnouncer(app[PUSH], app[DB])
    await announcer.start()
    app[ANNOUNCER] = announcer
    task = asyncio.create_task(announcer.watch(), name="hub-directory-watch")
    yield
    await stop(task)


async def publisher_ctx(app: web.Application) -> AsyncIterator[None]:
    """Publish the directory versions enrollments ask for (hub/publisher.py).

    At start, first whatever the sites table holds that the newest version does
    not list: a publication this hub owed when it stopped. Before stopping,
    what is due; should either fail, a maintenance pass makes it.
    """
    publisher = DirectoryPublisher(
        app[DB], app[KEYS], app[SETTINGS], app[DEPS].clock, app[ANNOUNCER]
    )
    app[PUBLISHER] = publisher
    try:
        await publish_owed(app, app[DEPS].clock.now())
    except Exception as exc:  # noqa: BLE001 -- the hub serves without it; the maintenance pass retries
        log.warning("directory.publish_failed", error=type(exc).__name__)
    task = asyncio.create_task(publisher.run(), name="hub-directory-publisher")
    yield
    await stop(task)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(publisher.flush(), timeout=STOP_FLUSH_S)


def create_app(
    settings: HubSettings,
    *,
    deps: Deps | None = None,
    extensions: Iterable[Callable[[web.Application], None]] = (),
) -> web.Application:
    """The hub application; `extensions` add routes (e.g. statistics) to it.

    `deps` is the clock and randomness every handler and background task uses
    (the system's unless given).
    """
    app = web.Application(
        middlewares=[problem_middleware],
        client_max_size=settings.relay.max_body,
    )
    app[SETTINGS] = settings
    app[KEYS] = read_keys(settings.key_path)
    app[DEPS] = deps or Deps.system()
    app[PUSH] = PushRegistry()
    app[METRICS] = Metrics()
    app[NONCES] = NonceMemory(settings.auth.max_skew)
    app.cleanup_ctx.append(db_ctx)
    app.cleanup_ctx.append(probe_ctx)
    app.cleanup_ctx.append(push_ctx)
    app.cleanup_ctx.append(announcer_ctx)
    app.cleanup_ctx.append(publisher_ctx)
    app.cleanup_ctx.append(listen_ctx)
    app.cleanup_ctx.append(maintenance_ctx)
    add_routes(app)
    for extend in extensions:
        extend(app)
    return app
