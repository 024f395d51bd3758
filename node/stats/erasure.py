"""Erasure never revises statistics already submitted.

An erased case drops out of the counts of every period it was in. Left alone,
the scheduler would see the changed cells of a submitted period and send a
new revision (node/stats/service.py), so a deletion would move the published
figures and, compared with the previous revision, point at the erased client.
`erase_keeping_statistics` wraps an erasure: in the caller's transaction it
computes, for every period whose newest revision is submitted and still up
to date, the cells hash after the erasure and records it as equivalent
(`stats_reports.erasure_hash`, `Submission.matches`). A newest revision still
pending (sealed, the hub not reached yet, or its answer lost) counts as
submitted: it goes out as sealed, and a revision after it that differs only
by the erased case is what this guard exists to prevent. A later change of the
period for another reason (a late contact, a correction) still sends a new
revision, which then counts without the erased case.

The numbers at the hub are counts without personal data, perturbed and
disclosure-controlled; keeping them is what the design asks for, and no
value of the erased case remains at the office.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TypeVar

from node.stats.compute import compute, unanswered_on
from node.stats.facts import Facts, load_facts
from node.stats.periods import Period, parse_period
from node.storage.context import StoreContext
from node.storage.db import transaction
from node.storage.stats_ledger import PENDING, SUBMITTED, StatsLedger, Submission, cells_hash
from protocol.cellkeys import RecordKeys

T = TypeVar("T")


class _RememberedKeys(RecordKeys):
    """Record keys remembered between the computation before an erasure and the one
    after it: the second finds almost every key already made."""

    def __init__(self, secret: bytes, period: str) -> None:
        super().__init__(secret, period)
        self._known: dict[tuple[str, str], int] = {}

    def key(self, cell: str, record: str) -> int:
        found = self._known.get((cell, record))
        if found is None:
            found = self._known[(cell, record)] = super().key(cell, record)
        return found


def _guarded(ctx: StoreContext) -> list[Submission]:
    """The newest revision of every period whose newest revision is submitted or
    pending. (A rejected one is not guarded: the hub did not take it.)"""
    rows = ctx.all(
        "SELECT r.* FROM stats_reports r WHERE r.state IN (?, ?) AND r.revision ="
        " (SELECT MAX(revision) FROM stats_reports x WHERE x.period = r.period)"
        " ORDER BY r.period",
        (SUBMITTED, PENDING),
    )
    return [Submission.from_row(r) for r in rows]


def _touches(facts: Facts, case_ids: Collection[str], period: Period) -> bool:
    """Whether the cases (with their contacts and referrals) count in `period`:
    only those periods can change when they are erased."""
    start, end = period.start.isoformat(), period.end.isoformat()
    for case_id in case_ids:
        case = facts.cases.get(case_id)
        if case is None or case.opened > end:
            continue
        if case.closed is None or case.closed >= start:
            return True
    if any(c.case_id in case_ids and start <= c.date <= end for c in facts.contacts):
        return True
    return any(
        r.case_id in case_ids
        and (
            any(d is not None and start <= d <= end for d in (r.sent, r.accepted, r.declined))
            or unanswered_on(r, end)
        )
        for r in facts.referrals
    )


def _hashes(facts: Facts, periods: dict[str, _RememberedKeys]) -> dict[str, str]:
    return {p: cells_hash(p, compute(facts, parse_period(p), keys)) for p, keys in periods.items()}


def erase_keeping_statistics(
    ctx: StoreContext, erase: Callable[[], T], case_ids: Collection[str] | None = None
) -> T:
    """Run `erase` (one or more case erasures) in one transaction and keep every
    up-to-date submitted (or pending) period unchanged in the scheduler's eyes.

    `case_ids` (the cases `erase` erases) limit the work to the periods those
    cases count in; without them every submitted period is computed twice.
    """
    ledger = StatsLedger(ctx)
    with transaction(ctx.db):
        guarded = _guarded(ctx)
        if not guarded:
            return erase()
        facts = load_facts(ctx)
        if case_ids is not None:
            guarded = [s for s in guarded if _touches(facts, case_ids, parse_period(s.period))]
        keys = {s.period: _RememberedKeys(facts.secret, s.period) for s in guarded}
        before = _hashes(facts, keys)
        result = erase()
        after = _hashes(load_facts(ctx), keys)
        for sub in guarded:
            if sub.matches(before[sub.period]) and after[sub.period] != before[sub.period]:
                ledger.set_erasure_hash(sub.period, sub.revision, after[sub.period])
        return result
