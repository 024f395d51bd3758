"""The hub's periodic work: check the database file (hourly), close revoked
nodes' push sockets, expire messages (and tell senders), prune, end key
rotation overlaps, publish a directory version some process owed, re-sign.

`run_once` is one pass with the time passed in, so tests drive it with their
own clock; `maintenance_ctx` runs it every `relay.expiry_interval` seconds.
The task must never end while the hub runs: a pass, and each step within it,
is a boundary that logs `maintenance.failed` (step, exception type) and goes
on, so an unexpected error costs one step of one pass, not the re-signing of
the directory a week later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from hub import directory, relay
from hub.auth import prune_nonces
from hub.context import ANNOUNCER, DB, DEPS, KEYS, METRICS, PUSH, SETTINGS
from hub.publisher import publish_due
from hub.push import close_revoked
from hub.rotation import end_overlaps
from hub.settings import HubSettings
from hub.storage import jobs
from hub.storage.db import write
from hub.storage.engine import Db
from hub.storage.integrity import quick_check
from protocol.keys import PrivateKeys
from support.tasks import stop

log = structlog.get_logger()
# How often `PRAGMA quick_check` runs (seconds); also once at start.
INTEGRITY_INTERVAL = 3600


def refresh_directory(db: Db, keys: PrivateKeys, settings: HubSettings, now: int) -> int | None:
    """Publish a freshly signed directory if the current one is missing or expiring soon."""
    with write(db):
        if not directory.refresh_due(db, settings, now):
            return None
        return directory.publish(db, keys, settings, now).version


async def publish_owed(app: web.Application, now: int) -> int | None:
    """Publish the next version if a site is not listed as the sites table holds it.

    Reads every site. What it finds is a publication some hub process owed
    when it stopped (hub/publisher.py) or a row changed outside the hub's
    code; normally nothing.
    """
    version = await app[DB].run(publish_due, app[KEYS], app[SETTINGS], now, None)
    if version is not None:
        log.info("directory.published_owed", version=version)
    return version


async def check_database(app: web.Application, now: int) -> int:
    """`PRAGMA quick_check` on the database thread; record and return the problems found.

    Reads the whole file: the other queries wait for it (a second or so per
    few hundred MB), the event loop does not. `db.corrupt` carries the count
    only (docs/hub.md, "Corruption").
    """
    problems = await app[DB].run(quick_check)
    app[METRICS].integrity.checked_at(now, problems)
    if problems:
        log.error("db.corrupt", check="quick_check", problems=problems)
    return problems


async def run_once(app: web.Application, now: int, *, shared: bool = True) -> set[str]:
    """One maintenance pass at time `now`; return the senders told about expired mail.

    The steps are independent: one that fails is logged and the others still
    run, above all the re-signing, without which every node would refuse the
    directory once it expires. `shared`: also the steps on the shared
    database (expiry, pruning, overlaps, re-signing), which one hub process
    runs per interval (`hub.storage.jobs`); the others only check their own
    sockets and announce.
    """
    db = app[DB]
    notified: set[str] = set()
    ended: int | None = None
    version: int | None = None
    checked = app[METRICS].integrity.checked
    if checked is None or now - checked >= INTEGRITY_INTERVAL:
        async with _step("integrity"):
            await check_database(app, now)
    async with _step("close_revoked"):
        # Normally done when the revoke's directory version is announced; this
        # is the backstop should that check have failed or raced a new socket.
        await close_revoked(app[PUSH], db)
    if shared:
        ended, version, notified = await _shared_steps(app, now)
    if version is not None or ended is not None:
        async with _step("announce"):
            await app[ANNOUNCER].check()
    return notified


async def _shared_steps(app: web.Application, now: int) -> tuple[int | None, int | None, set[str]]:
    db, settings, keys = app[DB], app[SETTINGS], app[KEYS]
    notified: set[str] = set()
    ended: int | None = None
    version: int | None = None
    async with _step("expire"):
        notified = await db.run(relay.expire, keys, settings, now, app[DEPS].random)
        if notified:
            log.info("relay.expired_notices", senders=len(notified))
            await app[PUSH].notify(notified)
    async with _step("prune_nonces"):
        await db.run(prune_nonces, settings, now)
    async with _step("prune_log"):
        await db.run(relay.prune_log, settings, now)
    async with _step("end_overlaps"):
        ended = await db.run(end_overlaps, keys, settings, now)
        if ended is not None:
            log.info("directory.overlaps_ended", version=ended)
    async with _step("owed_directory"):
        version = await publish_owed(app, now)
    async with _step("resign"):
        resigned = await db.run(refresh_directory, keys, settings, now)
        if resigned is not None:
            log.info("directory.resigned", version=resigned)
            version = resigned
    return ended, version, notified


@contextlib.asynccontextmanager
async def _step(name: str) -> AsyncIterator[None]:
    try:
        yield
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 -- outermost boundary of a background step: log it, run the others, retry next pass
        # The type only: an exception's text may quote stored data.
        log.error("maintenance.failed", step=name, error=type(exc).__name__)


async def _loop(app: web.Application) -> None:
    interval = app[SETTINGS].relay.expiry_interval
    while True:
        await asyncio.sleep(interval)
        try:
            now = app[DEPS].clock.now()
            shared = await app[DB].run(jobs.claim, "maintenance", interval, now)
            await run_once(app, now, shared=shared)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 -- the task must never die silently; the next pass retries
            log.error("maintenance.failed", step="pass", error=type(exc).__name__)


async def maintenance_ctx(app: web.Application) -> AsyncIterator[None]:
    # Before the hub serves: a damaged file shows in /health from the start.
    await check_database(app, app[DEPS].clock.now())
    task = asyncio.create_task(_loop(app), name="hub-maintenance")
    yield
    await stop(task)
