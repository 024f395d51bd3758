"""The hub's periodic work: expire messages (and tell senders), prune, end key
rotation overlaps, re-sign.

`run_once` is one pass with the time passed in, so tests drive it with their
own clock; `maintenance_ctx` runs it every `relay.expiry_interval` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator

import sqlite_utils
import structlog
from aiohttp import web

from hub import directory, relay
from hub.auth import prune_nonces
from hub.context import ANNOUNCER, CLOCK, DB, KEYS, PUSH, RANDOM, SETTINGS
from hub.errors import HubError
from hub.rotation import end_overlaps
from hub.settings import HubSettings
from hub.storage.db import write
from protocol.keys import PrivateKeys

log = structlog.get_logger()


def refresh_directory(
    db: sqlite_utils.Database, keys: PrivateKeys, settings: HubSettings, now: int
) -> int | None:
    """Publish a freshly signed directory if the current one is missing or expiring soon."""
    with write(db):
        if not directory.refresh_due(db, settings, now):
            return None
        return directory.publish(db, keys, settings, now).version


async def run_once(app: web.Application, now: int) -> set[str]:
    """One maintenance pass at time `now`; return the senders told about expired mail."""
    db, settings, keys = app[DB], app[SETTINGS], app[KEYS]
    notified = await db.run(relay.expire, keys, settings, now, app[RANDOM])
    if notified:
        log.info("relay.expired_notices", senders=len(notified))
        await app[PUSH].notify(notified)
    await db.run(prune_nonces, settings, now)
    await db.run(relay.prune_log, settings, now)
    ended = await db.run(end_overlaps, keys, settings, now)
    if ended is not None:
        log.info("directory.overlaps_ended", version=ended)
    version = await db.run(refresh_directory, keys, settings, now)
    if version is not None:
        log.info("directory.resigned", version=version)
    if version is not None or ended is not None:
        await app[ANNOUNCER].check()
    return notified


async def _loop(app: web.Application) -> None:
    interval = app[SETTINGS].relay.expiry_interval
    while True:
        await asyncio.sleep(interval)
        try:
            await run_once(app, int(app[CLOCK]()))
        except (HubError, sqlite3.Error) as exc:
            # Keep the relay running; the next pass retries.
            log.error("maintenance.failed", error=type(exc).__name__)


async def maintenance_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_loop(app), name="hub-maintenance")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
