"""Publish due periods in the background, so no coordinator waits for it.

A period is published at the first read after its cutoff (hub/stats/publication.py
`due`). That read used to be a coordinator's page: at 1,500 offices a
publication sums millions of cells (10–20 s), and the Verlauf view reads up to
twenty periods at once. This task publishes every period whose cutoff has
passed every `PUBLISH_INTERVAL` seconds, with the same function, so the
published set is the same whichever comes first (the set is defined by receive
times before the cutoff, not by when it is recorded).

The first pass runs one interval after start-up, not at once: a restart should
not queue a long database job in front of the nodes' first uploads.
A failing pass is logged (`stats.autopublish_failed`, type only) and retried on
the next; the read path still publishes on its own, so nothing depends on this
task except the waiting time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from hub.context import DB, DEPS, SETTINGS
from hub.settings import HubSettings
from hub.stats import publication
from hub.stats.errors import StatsError
from hub.stats.periods import parse_period
from hub.stats.store import unpublished_periods
from hub.storage import jobs
from hub.storage.engine import Db
from support.tasks import stop

log = structlog.get_logger()
PUBLISH_INTERVAL = 600


def due_periods(db: Db, settings: HubSettings, now: int) -> list[str]:
    """Reported, unpublished periods whose cutoff has passed."""
    out = []
    for raw in unpublished_periods(db):
        try:
            period = parse_period(raw)
        except StatsError:
            continue  # stored before today's checks; never publishable, never read
        if now >= publication.cutoff(period, settings):
            out.append(raw)
    return out


async def publish_due(app: web.Application, now: int) -> list[str]:
    """Publish every due period, one database job each; return their ids."""
    db, settings = app[DB], app[SETTINGS]
    done = []
    for raw in await db.run(due_periods, settings, now):
        # One job per period: uploads queued meanwhile run between two publications.
        held = await db.run(publication.due, parse_period(raw), settings, now)
        if held is not None:
            log.info("stats.autopublished", period=raw, reports=held.reports)
            done.append(raw)
    return done


async def _loop(app: web.Application) -> None:
    while True:
        await asyncio.sleep(PUBLISH_INTERVAL)
        try:
            now = app[DEPS].clock.now()
            # One hub process per interval publishes (hub.storage.jobs).
            if await app[DB].run(jobs.claim, "stats.autopublish", PUBLISH_INTERVAL, now):
                await publish_due(app, now)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 -- background boundary: log, retry next pass; reads still publish
            log.error("stats.autopublish_failed", error=type(exc).__name__)


async def autopublish_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_loop(app), name="stats-autopublish")
    yield
    await stop(task)
