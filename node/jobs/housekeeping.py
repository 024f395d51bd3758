"""The background task that expires unanswered referrals (node/storage/lifecycle.py).

A round runs at start-up and then every `[referrals] check_interval` seconds:
it expires referrals nobody answered within `answer_within_days` (the clock is
the app's injected one, so tests move time instead of waiting) and retries
withdrawals and erasure notices that could not be sealed before, and drops
the answers kept for retried requests after a day (node/storage/idempotency.py).
When a round queued messages the outbox listeners wake the sync worker.
`referral_housekeeping_ctx` is registered by node/cli.py `sync_background`,
next to the sync worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import structlog
from aiohttp import web

from node.api import keys
from node.config import ReferralSettings
from node.jobs.task import PeriodicTask
from node.storage.db import scrub
from node.storage.erasure import Erasure
from node.storage.idempotency import IdempotencyKeys
from node.storage.lifecycle import Housekeeping, ReferralLifecycle
from node.sync.ports import Runner, inline

log = structlog.get_logger()


class ReferralHousekeeping(PeriodicTask):
    task_name = "mbe-node-referral-expiry"
    failure_event = "referrals.housekeeping_failed"

    def __init__(
        self,
        lifecycle: ReferralLifecycle,
        settings: ReferralSettings,
        listeners: Sequence[Callable[[], None]] = (),
        run: Runner = inline,
        erasure: Erasure | None = None,
        idempotency: IdempotencyKeys | None = None,
    ) -> None:
        super().__init__(settings.check_interval)
        self.lifecycle = lifecycle
        self.erasure = erasure
        self.idempotency = idempotency
        self._db = run
        self.settings = settings
        self.listeners = listeners
        self.rounds = 0

    async def run_once(self) -> Housekeeping:
        done = await self._db(self.lifecycle.run, self.settings.answer_within_days)
        notices = await self._db(self.erasure.send_pending) if self.erasure else []
        if self.idempotency is not None:
            await self._db(_purge_answers, self.idempotency)
        self.rounds += 1
        if done.queued or notices:
            for listener in self.listeners:
                listener()
        return done


def _purge_answers(keys: IdempotencyKeys) -> None:
    """Drop answers kept for retries longer than a day; they may hold client data."""
    if keys.purge():
        scrub(keys.ctx.db)


HOUSEKEEPING = web.AppKey("mbe_node_referral_housekeeping", ReferralHousekeeping)


async def referral_housekeeping_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the expiry rounds while the app runs (needs the store from store_ctx)."""
    listeners = app[keys.OUTBOX_LISTENERS]  # the list itself: listeners added later count too
    store = app[keys.STORE]
    task = ReferralHousekeeping(
        store.lifecycle,
        app[keys.SETTINGS].referrals,
        listeners,
        run=store.run,
        erasure=store.erasure,
        idempotency=store.idempotency,
    )
    app[HOUSEKEEPING] = task
    await task.start()
    yield
    await task.stop()
