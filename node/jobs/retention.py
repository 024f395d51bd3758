"""The background task that erases closed cases whose retention period ended.

docs/client-rights.md, "Retention". A round runs at start-up and then every
`CHECK_INTERVAL` seconds: it lists the closed cases due on the injected
clock's today (`[retention] years`, node/domain/retention.py) that are not on
hold, and erases them one case per transaction with
`store.erasure.erase_case(case_id, "retention", app="retention")` inside the
statistics guard (node/stats/erasure.py: submitted statistics are not
revised), then checkpoints the WAL (`scrub`). Erasure notices to offices that
received the client's data are queued in the same transaction; the outbox
listeners wake the sync worker after the round.

Crash-safe without bookkeeping: a case is erased and audited in one
transaction or not at all, and an erased case is gone from `cases`, so a
round interrupted between two cases (a crash, a database error) erases the
rest in the next round or after a restart, and none twice. A case put on hold
or erased by an app between the listing and its turn is skipped (the erasure
re-checks inside its transaction). Any other error ends the round (logged by
type); the next round tries again. Logs carry counts, never case ids.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import structlog
from aiohttp import web

from node.api import keys
from node.clock import Clock
from node.config import RetentionSettings
from node.errors import ConflictError, NotFound
from node.jobs.task import PeriodicTask
from node.stats.erasure import erase_keeping_statistics
from node.storage.db import scrub
from node.storage.erasure import ErasureResult
from node.storage.store import NodeStore
from node.sync.ports import Runner, inline

log = structlog.get_logger()

# The erasure reason (protocol.codes.ERASURE_REASON) and the app name of the
# audit rows the job writes.
REASON = "retention"
APP = "retention"
# Seconds between rounds: dates change once a day, an hour is soon enough.
CHECK_INTERVAL = 3600.0

Erase = Callable[[NodeStore, str], ErasureResult]


def erase_due_case(store: NodeStore, case_id: str) -> ErasureResult:
    """Erase one due case in its own transaction, statistics kept, WAL scrubbed."""
    result = erase_keeping_statistics(
        store.ctx, lambda: store.erasure.erase_case(case_id, REASON, app=APP), case_ids=[case_id]
    )
    scrub(store.db)
    return result


@dataclass(frozen=True)
class RetentionRound:
    """What one round did: cases erased, cases skipped (held or erased meanwhile),
    erasure notices queued."""

    erased: tuple[str, ...]
    skipped: int
    notices: int


class RetentionJob(PeriodicTask):
    task_name = "mbe-node-retention"
    failure_event = "retention.round_failed"

    def __init__(
        self,
        store: NodeStore,
        settings: RetentionSettings,
        clock: Clock,
        listeners: Sequence[Callable[[], None]] = (),
        *,
        run: Runner = inline,
        interval: float = CHECK_INTERVAL,
        erase: Erase = erase_due_case,
    ) -> None:
        super().__init__(interval)
        self.store = store
        self.settings = settings
        self.clock = clock
        self.listeners = listeners
        self._db = run
        self._erase = erase
        self.rounds = 0

    async def run_once(self) -> RetentionRound:
        """Erase every case due today and not on hold, one transaction each."""
        due = await self._db(self.store.retention.erasable, self.clock.today(), self.settings.years)
        erased: list[str] = []
        skipped = notices = 0
        try:
            for case_id in due:
                try:
                    result = await self._db(self._erase, self.store, case_id)
                except (ConflictError, NotFound) as exc:
                    # Put on hold (409) or erased (410) by an app since the listing.
                    log.info("retention.case_skipped", error=exc.kind)
                    skipped += 1
                    continue
                erased.append(case_id)
                notices += len(result.notices)
        finally:
            self.rounds += 1
            if erased or due:
                log.info("retention.round", due=len(due), erased=len(erased), skipped=skipped)
            if notices:
                for listener in self.listeners:
                    listener()
        return RetentionRound(erased=tuple(erased), skipped=skipped, notices=notices)


RETENTION = web.AppKey("mbe_node_retention", RetentionJob)


async def retention_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the retention rounds while the app runs (needs the store from store_ctx)."""
    store = app[keys.STORE]
    listeners = app[keys.OUTBOX_LISTENERS]  # the list itself: listeners added later count too
    job = RetentionJob(
        store, app[keys.SETTINGS].retention, app[keys.DEPS].clock, listeners, run=store.run
    )
    app[RETENTION] = job
    await job.start()
    yield
    await job.stop()
