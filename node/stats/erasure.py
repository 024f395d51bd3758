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

from collections.abc import Callable
from typing import TypeVar

from node.stats.compute import compute
from node.stats.facts import load_facts
from node.stats.periods import parse_period
from node.storage.context import StoreContext
from node.storage.db import transaction
from node.storage.stats_ledger import PENDING, SUBMITTED, StatsLedger, Submission, cells_hash

T = TypeVar("T")


def _hashes(ctx: StoreContext, periods: list[str]) -> dict[str, str]:
    facts = load_facts(ctx)
    return {p: cells_hash(p, compute(facts, parse_period(p))) for p in periods}


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


def erase_keeping_statistics(ctx: StoreContext, erase: Callable[[], T]) -> T:
    """Run `erase` (one or more case erasures) in one transaction and keep every
    up-to-date submitted period unchanged in the scheduler's eyes."""
    ledger = StatsLedger(ctx)
    with transaction(ctx.db):
        submitted = _guarded(ctx)
        if not submitted:
            return erase()
        before = _hashes(ctx, [s.period for s in submitted])
        result = erase()
        after = _hashes(ctx, [s.period for s in submitted])
        for sub in submitted:
            if sub.matches(before[sub.period]) and after[sub.period] != before[sub.period]:
                ledger.set_erasure_hash(sub.period, sub.revision, after[sub.period])
        return result
