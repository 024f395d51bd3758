"""The background task that sends the audit chain's signed head to the hub.

At start and every `HEAD_INTERVAL` seconds (node/audit.py): check the chain on
the database thread (in full at start and once a day, otherwise from the last
entry found intact), sign its newest hash with the node's current key (read
from node.key each round, so a key rotation is picked up) and send it to the
hub, which keeps the newest one per office. A broken chain is logged and
nothing is signed. A failing round is logged by type and the next one tries
again. `audit_head_ctx` is registered by node/cli.py `sync_background`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from node.api import keys
from node.audit import HEAD_INTERVAL, send_head
from node.clock import Deps
from node.config import NodeSettings, load_keys
from node.jobs.task import PeriodicTask
from node.storage.store import NodeStore

log = structlog.get_logger()

# A full check of the chain this often (seconds); rounds in between continue
# from the last entry found intact.
FULL_CHECK_EVERY = 24 * 3600


class AuditHeadJob(PeriodicTask):
    task_name = "mbe-node-audit-head"
    failure_event = "audit.head_failed"

    def __init__(
        self,
        store: NodeStore,
        settings: NodeSettings,
        deps: Deps,
        interval: float = HEAD_INTERVAL,
    ) -> None:
        super().__init__(interval)
        self.store = store
        self.settings = settings
        self.deps = deps
        self.rounds = 0
        self.last: str | None = None
        self._last_full: int | None = None

    async def run_once(self) -> str:
        now = self.deps.clock.now()
        full = self._last_full is None or now - self._last_full >= FULL_CHECK_EVERY
        node_keys = await asyncio.to_thread(load_keys, self.settings.key_path)
        # The first round sends the head even if unchanged: the hub may have lost it.
        outcome = await send_head(
            self.store, self.settings, node_keys, self.deps, full=full, force=self.rounds == 0
        )
        if full:
            self._last_full = now
        self.rounds += 1
        self.last = outcome
        return outcome


AUDIT_HEAD_JOB = web.AppKey("mbe_node_audit_head_job", AuditHeadJob)


async def audit_head_ctx(app: web.Application) -> AsyncIterator[None]:
    """Send the chain head while the app runs (needs the store from store_ctx)."""
    job = AuditHeadJob(app[keys.STORE], app[keys.SETTINGS], app[keys.DEPS])
    app[AUDIT_HEAD_JOB] = job
    await job.start()
    yield
    await job.stop()
