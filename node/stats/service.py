"""`StatsService`: preview, submit and the scheduled run, over the store and the hub.

One report per (period, revision). The decision table, per period:

| newest row        | cells now    | manual submit           | scheduled run          |
|-------------------|--------------|-------------------------|------------------------|
| none              | any          | send revision 1         | send revision 1 if due |
| pending           | any          | re-send its bytes now   | re-send when its backoff ends |
| submitted         | same hash    | nothing ("unchanged")   | nothing                |
| submitted         | other hash   | send revision + 1       | send revision + 1      |
| rejected          | same hash    | send revision + 1       | nothing (needs a person) |
| rejected          | other hash   | send revision + 1       | send revision + 1      |

A pending report is always settled before a newer revision is made: the hub
may already hold it (lost answer), so the newer one must come after it. When a
pending envelope is about to expire it is resealed with the current cells under
the same revision. "Unreachable" (connection error, timeout, 5xx, 429, an
answer outside the contract) leaves the row pending with capped, jittered
backoff; a 4xx is final for that revision.

Alternative rejected: queue stats envelopes in the referral outbox. The hub
takes them on another route (POST /v1/stats) and answers per report, and a
report superseded by a newer revision should not be sent at all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from node.errors import NotEnrolled
from node.stats.compute import compute
from node.stats.errors import PeriodNotOver
from node.stats.facts import Facts, load_facts, local_date
from node.stats.periods import Period, parse_period, periods_between
from node.stats.sealing import seal_report
from node.stats.settings import StatsSettings
from node.storage.context import StoreContext, iso
from node.storage.stats_ledger import (
    PENDING,
    REJECTED,
    SUBMITTED,
    StatsLedger,
    Submission,
    cells_hash,
)
from node.sync import backoff
from node.sync.client import HubClient
from node.sync.errors import HubRefused, HubResponseError, HubUnreachable, SyncError
from node.sync.hub_urls import HubUrls
from node.sync.ports import EnrollmentState, Runner, inline
from protocol import codes
from protocol.hub_api import NODE_WIDE
from protocol.keys import PrivateKeys
from protocol.payloads import StatsCell, StatsReport
from support.clock import Deps, uniform

log = structlog.get_logger()

# Reseal a pending envelope that would expire within this many seconds.
_EXPIRY_MARGIN = 3600

SUBMITTED_NOW, QUEUED, UNCHANGED = "submitted", "queued", "unchanged"


class Uplink(Protocol):
    async def submit_stats(self, envelope: bytes) -> tuple[str, int]: ...


Connect = Callable[[EnrollmentState], AbstractAsyncContextManager[Uplink]]


def hub_connector(keys: PrivateKeys, request_timeout: float, deps: Deps) -> Connect:
    """The production uplink: one HubClient session per submission, signing with the
    node's own clock and randomness."""

    @asynccontextmanager
    async def connect(enrollment: EnrollmentState) -> AsyncIterator[Uplink]:
        async with HubClient(
            HubUrls.of(enrollment),
            keys=keys,
            node_id=enrollment.node_id,
            request_timeout=request_timeout,
            deps=deps,
        ) as client:
            yield client

    return connect


@dataclass(frozen=True)
class Outcome:
    """What a submission did: `submitted`, `queued`, `unchanged` or `rejected`."""

    period: str
    revision: int
    state: str
    cell_count: int
    detail: str | None = None

    def to_map(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "revision": self.revision,
            "state": self.state,
            "cell_count": self.cell_count,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Computed:
    period: Period
    cells: tuple[StatsCell, ...]
    cells_hash: str


def _compute_all(facts: Facts, periods: list[Period]) -> list[Computed]:
    out = []
    for p in periods:
        cells = compute(facts, p)
        out.append(Computed(p, cells, cells_hash(p.id, cells)))
    return out


class StatsService:
    def __init__(
        self,
        ctx: StoreContext,
        settings: StatsSettings,
        *,
        connect: Connect,
        load_enrollment: Callable[[], EnrollmentState | None],
        run: Runner = inline,
    ) -> None:
        self.ctx = ctx
        # Every database read and write goes through `_db` (the store's thread in
        # the server); sealing runs there too, counting in a worker thread.
        self._db = run
        self.settings = settings
        self.ledger = StatsLedger(ctx)
        self._connect = connect
        self._load_enrollment = load_enrollment
        # One submission at a time: the API and the scheduler may both try a period.
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------ computing

    def today(self) -> dt.date:
        return dt.date.fromisoformat(self.ctx.today())

    async def _computed(self, periods: list[Period]) -> list[Computed]:
        """Read the facts on the connection's thread, count in a worker thread."""
        facts = await self._db(load_facts, self.ctx)
        return await asyncio.to_thread(_compute_all, facts, periods)

    async def preview(self, period_id: str) -> dict[str, Any]:
        """The counts the office would send for `period_id`, with its submission state."""
        period = parse_period(period_id)
        (c,) = await self._computed([period])
        latest = await self._db(self.ledger.latest, period.id)
        return {
            "period": period.id,
            "dataset": codes.DATASET,
            "complete": period.is_over(self.today()),
            "generated": iso(self.ctx.now()),
            "cell_count": len(c.cells),
            "cells": [
                {"measure": x.measure, "dims": dict(x.dims), "count": x.count} for x in c.cells
            ],
            "last_submission": None if latest is None else latest.view(),
            "changed_since_submission": None
            if latest is None
            else not latest.matches(c.cells_hash),
        }

    # ----------------------------------------------------------- submitting

    def _enrollment(self) -> EnrollmentState:
        enrollment = self._load_enrollment()
        if enrollment is None:
            raise NotEnrolled("the node is not enrolled with a hub (run mbe-node enroll)")
        return enrollment

    async def submit(self, period_id: str) -> Outcome:
        """Manual submission of an ended period (API and CLI)."""
        period = parse_period(period_id)
        if not period.is_over(self.today()):
            raise PeriodNotOver(f"period {period.id} has not ended; only ended periods are sent")
        await self._db(self._enrollment)
        async with self._lock:
            (c,) = await self._computed([period])
            return await self._submit(c, manual=True)

    async def _submit(self, c: Computed, *, manual: bool) -> Outcome:
        latest = await self._db(self.ledger.latest, c.period.id)
        sent: Outcome | None = None
        if latest is not None and latest.state == PENDING:
            if not manual and latest.next_attempt > self.ctx.now():
                return _outcome(latest, QUEUED)
            sent = await self._send(latest, c)
            if sent.state != SUBMITTED_NOW:
                return sent
            latest = await self._db(self.ledger.latest, c.period.id)
        if latest is not None and latest.matches(c.cells_hash):
            if latest.state == SUBMITTED:
                return sent or _outcome(latest, UNCHANGED)
            if latest.state == REJECTED and not manual:
                return _outcome(latest, REJECTED)
        return await self._send(await self._db(self._new_revision, c), c)

    def _new_revision(self, c: Computed) -> Submission:
        enrollment = self._enrollment()
        revision = self.ledger.next_revision(c.period.id)
        now = self.ctx.now()
        report = StatsReport(period=c.period.id, revision=revision, generated=now, cells=c.cells)
        sealed = seal_report(
            report,
            keys=self.ctx.keys,
            enrollment=enrollment,
            deps=self.ctx.deps,
            ttl=self.ctx.message_ttl,
        )
        sub = Submission(
            period=c.period.id,
            revision=revision,
            cells_hash=c.cells_hash,
            cell_count=len(c.cells),
            generated=now,
            state=PENDING,
            msg_id=sealed.msg_id,
            envelope=sealed.envelope,
            expires=sealed.expires,
            attempts=0,
            next_attempt=now,
            last_error=None,
            submitted_at=None,
        )
        self.ledger.insert_pending(sub)
        log.info("stats.sealed", period=c.period.id, revision=revision, cells=len(c.cells))
        return sub

    def _resealed(self, sub: Submission, c: Computed) -> Submission:
        enrollment = self._enrollment()
        now = self.ctx.now()
        report = StatsReport(period=sub.period, revision=sub.revision, generated=now, cells=c.cells)
        sealed = seal_report(
            report,
            keys=self.ctx.keys,
            enrollment=enrollment,
            deps=self.ctx.deps,
            ttl=self.ctx.message_ttl,
        )
        new = Submission(
            **{
                **sub.__dict__,
                "cells_hash": c.cells_hash,
                "cell_count": len(c.cells),
                "generated": now,
                "msg_id": sealed.msg_id,
                "envelope": sealed.envelope,
                "expires": sealed.expires,
            }
        )
        self.ledger.reseal(new)
        log.info("stats.resealed", period=sub.period, revision=sub.revision)
        return new

    async def _send(self, sub: Submission, c: Computed) -> Outcome:
        enrollment = await self._db(self._enrollment)
        now = self.ctx.now()
        if sub.envelope is None or sub.expires <= now + _EXPIRY_MARGIN:
            sub = await self._db(self._resealed, sub, c)
        assert sub.envelope is not None  # a pending row always holds its envelope
        try:
            async with self._connect(enrollment) as uplink:
                answer = await uplink.submit_stats(sub.envelope)
            if answer != (sub.period, sub.revision):
                raise HubResponseError("the hub confirmed another period or revision")
        except HubRefused as exc:
            if exc.problem in NODE_WIDE or exc.status in (401, 403):
                # About this node (its clock, keys, enrollment), not this report:
                # the report waits, as for an unreachable hub, until that is fixed.
                return await self._retry_later(sub, exc)
            reason = _hub_reason(exc)
            await self._db(
                self.ledger.mark_rejected, sub.period, sub.revision, reason, self.ctx.now()
            )
            log.warning(
                "stats.rejected", period=sub.period, revision=sub.revision, problem=exc.problem
            )
            return _outcome(sub, REJECTED, f"the hub refused the report ({reason})")
        except (HubUnreachable, HubResponseError) as exc:
            return await self._retry_later(sub, exc)
        await self._db(self.ledger.mark_submitted, sub.period, sub.revision, self.ctx.now())
        log.info("stats.submitted", period=sub.period, revision=sub.revision, cells=sub.cell_count)
        return _outcome(sub, SUBMITTED_NOW)

    async def _retry_later(self, sub: Submission, exc: SyncError) -> Outcome:
        """Keep the report pending and retry it after a backoff; QUEUED with the reason."""
        wait = backoff.full_jitter(
            sub.attempts + 1,
            base=self.settings.retry_min,
            cap=self.settings.check_interval,
            rng=self._rng,
        )
        retry_at = self.ctx.now() + max(1, int(wait))
        error = exc.problem if isinstance(exc, HubRefused) else type(exc).__name__
        await self._db(self.ledger.mark_retry, sub.period, sub.revision, error, retry_at)
        log.info("stats.queued", period=sub.period, revision=sub.revision, error=error)
        return _outcome(sub, QUEUED, str(exc))

    def _rng(self) -> float:
        return uniform(self.ctx.deps.random)

    # -------------------------------------------------------- scheduled run

    def candidates(self, facts: Facts, enrollment: EnrollmentState) -> list[Period]:
        """Ended periods due for automatic submission within the lookback window."""
        today = self.today()
        back = today.year * 12 + today.month - 1 - self.settings.lookback_months
        window = dt.date(back // 12, back % 12 + 1, 1)
        enrolled = dt.date.fromisoformat(local_date(enrollment.enrolled_at))
        earliest = facts.earliest()
        first = min(enrolled, dt.date.fromisoformat(earliest)) if earliest else enrolled
        first = max(first, window)
        return [
            p
            for p in periods_between(first, today, self.settings.periods)
            if p.start >= window and p.due(today, self.settings.submit_after_days)
        ]

    async def run_due(self) -> list[Outcome]:
        """One scheduler round: retry pending reports, then send due or changed periods."""
        enrollment = await self._db(self._load_enrollment)
        if enrollment is None:
            return []
        async with self._lock:
            outcomes: list[Outcome] = []
            facts = await self._db(load_facts, self.ctx)
            pending = await self._db(self.ledger.pending_due, self.ctx.now())
            periods = {s.period: parse_period(s.period) for s in pending}
            if self.settings.auto_submit:
                periods.update({p.id: p for p in self.candidates(facts, enrollment)})
            todo = sorted(periods.values(), key=lambda p: (p.end, p.kind))
            for c in await asyncio.to_thread(_compute_all, facts, todo):
                auto = self.settings.auto_submit and c.period.due(
                    self.today(), self.settings.submit_after_days
                )
                latest = await self._db(self.ledger.latest, c.period.id)
                if not auto and (latest is None or latest.state != PENDING):
                    continue
                out = await self._submit(c, manual=False)
                if out.state == SUBMITTED_NOW or out.detail is not None:
                    outcomes.append(out)  # something was sent or tried in this round
                if out.state == QUEUED and out.detail is not None:
                    break  # the hub is unreachable: the rest waits for the next round
            return outcomes

    async def next_wakeup(self) -> int | None:
        """When the earliest pending report may be retried (unix seconds), if any."""
        return await self._db(self.ledger.next_pending_time)


def _outcome(sub: Submission, state: str, detail: str | None = None) -> Outcome:
    return Outcome(sub.period, sub.revision, state, sub.cell_count, detail)


def _hub_reason(exc: HubRefused) -> str:
    """The hub's problem and its reason, as one printable line (a report holds
    counts only, so the hub's text about it holds no personal data)."""
    detail = "".join(c if c.isprintable() else " " for c in exc.detail)[:160].strip()
    return f"{exc.problem}: {detail}" if detail else exc.problem
