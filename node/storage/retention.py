"""Retention: which closed cases are due for erasure, and holds that keep them.

docs/client-rights.md, "Retention". A closed case is erased on 1 January of
(year closed + `[retention] years` + 1) (node/domain/retention.py) by the
retention job (node/jobs/retention.py), one case per transaction, unless it is
on hold: a row in `retention_holds` with a reason code
(`protocol.codes.HOLD_REASON`), e.g. a pending legal claim. A hold may be put on
an open case too (it then takes effect when the case is due); it goes with the
case (ON DELETE CASCADE). Open cases are never due.

Ids, dates and codes only: nothing here reads or returns a client value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from node.domain.retention import due_before, erase_on
from node.errors import InvalidInput
from node.storage.cases import Cases
from node.storage.context import StoreContext, iso
from node.storage.db import transaction
from protocol import codes

# How far ahead the due list, the status views and GET /retention/due look.
DUE_WITHIN_DAYS = 30


@dataclass(frozen=True)
class Hold:
    """A case kept past its retention period: why (a HOLD_REASON code) and since when."""

    case_id: str
    reason: str
    since: int

    def view(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "reason": self.reason, "since": iso(self.since)}


@dataclass(frozen=True)
class DueCase:
    """A closed case whose erasure date falls within the window (or has passed)."""

    case_id: str
    closed: str
    erase_on: str
    hold: Hold | None

    def view(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "closed": self.closed,
            "erase_on": self.erase_on,
            "hold": None
            if self.hold is None
            else {"reason": self.hold.reason, "since": iso(self.hold.since)},
        }


@dataclass(frozen=True)
class DueCounts:
    """What the status views show: cases the job will erase within the window (or
    has yet to erase), and due cases kept back by a hold."""

    due: int
    held: int


def _horizon(today: str, within_days: int) -> str:
    if within_days < 0:
        raise InvalidInput("within_days must not be negative")
    return (dt.date.fromisoformat(today) + dt.timedelta(days=within_days)).isoformat()


class Retention:
    def __init__(self, ctx: StoreContext, cases: Cases) -> None:
        self.ctx = ctx
        self.cases = cases

    def due(self, today: str, years: int, within_days: int = DUE_WITHIN_DAYS) -> list[DueCase]:
        """Closed cases whose erasure date is at most `within_days` after `today`
        (also those already due and not yet erased, held ones among them), by
        erasure date, then closure date and id. Never an open case."""
        cutoff = due_before(years, _horizon(today, within_days))
        rows = self.ctx.all(
            "SELECT c.id, c.closed, h.reason, h.since FROM cases c"
            " LEFT JOIN retention_holds h ON h.case_id = c.id"
            " WHERE c.closed IS NOT NULL AND c.closed < ? ORDER BY c.closed, c.id",
            (cutoff,),
        )
        return [
            DueCase(
                case_id=r["id"],
                closed=r["closed"],
                erase_on=erase_on(r["closed"], years),
                hold=None if r["reason"] is None else Hold(r["id"], r["reason"], int(r["since"])),
            )
            for r in rows
        ]

    def erasable(self, today: str, years: int) -> list[str]:
        """Ids of the closed cases due for erasure on `today` and not on hold, oldest
        closure first: what the retention job erases."""
        rows = self.ctx.all(
            "SELECT c.id FROM cases c WHERE c.closed IS NOT NULL AND c.closed < ?"
            " AND NOT EXISTS (SELECT 1 FROM retention_holds h WHERE h.case_id = c.id)"
            " ORDER BY c.closed, c.id",
            (due_before(years, today),),
        )
        return [str(r["id"]) for r in rows]

    def counts(self, today: str, years: int, within_days: int = DUE_WITHIN_DAYS) -> DueCounts:
        """How many cases `due` lists, split into those the job will erase and held ones."""
        row = self.ctx.one(
            "SELECT COUNT(*) AS n, COUNT(h.case_id) AS held FROM cases c"
            " LEFT JOIN retention_holds h ON h.case_id = c.id"
            " WHERE c.closed IS NOT NULL AND c.closed < ?",
            (due_before(years, _horizon(today, within_days)),),
        )
        n, held = (int(row["n"]), int(row["held"])) if row else (0, 0)
        return DueCounts(due=n - held, held=held)

    def hold_of(self, case_id: str) -> Hold | None:
        """The case's hold, or None; NotFound (Gone when erased) for an unknown case."""
        self.cases.row(case_id)
        return self._hold(case_id)

    def _hold(self, case_id: str) -> Hold | None:
        row = self.ctx.one(
            "SELECT reason, since FROM retention_holds WHERE case_id = ?", (case_id,)
        )
        return None if row is None else Hold(case_id, str(row["reason"]), int(row["since"]))

    def hold(self, case_id: str, reason: str) -> tuple[Hold, bool]:
        """Put the case on hold (open or closed); a case already on hold gets the new
        reason and keeps its `since`. Returns the hold and whether it is new.

        InvalidInput for a reason outside HOLD_REASON; NotFound for an unknown case
        (Gone for an erased one).
        """
        if reason not in codes.HOLD_REASON:
            raise InvalidInput("hold.reason: not a known code")
        with transaction(self.ctx.db):
            self.cases.row(case_id)
            current = self._hold(case_id)
            if current is None:
                held = Hold(case_id, reason, self.ctx.now())
                self.ctx.run(
                    "INSERT INTO retention_holds (case_id, reason, since) VALUES (?, ?, ?)",
                    (case_id, reason, held.since),
                )
            else:
                held = Hold(case_id, reason, current.since)
                self.ctx.run(
                    "UPDATE retention_holds SET reason = ? WHERE case_id = ?", (reason, case_id)
                )
        return held, current is None

    def release(self, case_id: str) -> Hold | None:
        """Lift the case's hold; the released hold, or None when there was none (a
        repeated release changes nothing). NotFound for an unknown case."""
        with transaction(self.ctx.db):
            self.cases.row(case_id)
            current = self._hold(case_id)
            if current is not None:
                self.ctx.run("DELETE FROM retention_holds WHERE case_id = ?", (case_id,))
        return current
