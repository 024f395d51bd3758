"""The background task that submits ended periods on its own.

Each round (at start, then every `check_interval`, or earlier when a pending
report's backoff ends) calls `StatsService.run_due`. The round reads the case
store on the database thread and counts in a worker thread, so the API keeps
answering. A failing round is logged by type and the
next round tries again; the task only ends when the app shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from node.api import keys
from node.api.stats_handlers import STATS
from node.clock import Clock
from node.jobs.task import BackgroundTask
from node.stats.service import StatsService

log = structlog.get_logger()


class StatsScheduler(BackgroundTask):
    task_name = "mbe-node-stats"

    def __init__(self, service: StatsService, clock: Clock) -> None:
        super().__init__()
        self.service = service
        self.clock = clock
        self._wake = asyncio.Event()
        self.rounds = 0

    def wake(self) -> None:
        """Run a round now (e.g. after a manual submission was queued)."""
        self._wake.set()

    async def _delay(self) -> float:
        delay = self.service.settings.check_interval
        pending = await self.service.next_wakeup()
        if pending is not None:
            delay = min(delay, max(1.0, float(pending - self.clock.now())))
        return delay

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                outcomes = await self.service.run_due()
                if outcomes:
                    log.info("stats.round", sent=len(outcomes))
            except Exception as exc:  # noqa: BLE001 -- background loop boundary: log the type, retry next round
                log.error("stats.round_failed", error=type(exc).__name__)
            self.rounds += 1
            try:
                delay = await self._delay()
            except Exception as exc:  # noqa: BLE001 -- background loop boundary: log the type, wait the full interval
                log.error("stats.schedule_failed", error=type(exc).__name__)
                delay = self.service.settings.check_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)


STATS_SCHEDULER = web.AppKey("mbe_node_stats_scheduler", StatsScheduler)


async def stats_scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Automatic submission next to the API (registered by node/cli.py sync_background)."""
    scheduler = StatsScheduler(app[STATS], app[keys.DEPS].clock)
    app[STATS_SCHEDULER] = scheduler
    app[keys.STATS_QUEUED_LISTENERS].append(scheduler.wake)
    await scheduler.start()
    yield
    await scheduler.stop()
