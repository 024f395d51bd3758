"""SQL for the bookkeeping of submitted reports (table stats_reports, migration 0002).

Per period the rows are its revisions. A revision number is taken once and
never reused, even when the hub refused it: the hub may have stored a report
whose answer we never saw. A pending row keeps its sealed envelope so a retry
sends the same bytes (idempotent at the hub); the envelope is dropped once the
row is settled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from node.domain.report_states import ReportEvent, ReportState, after, from_states
from node.errors import InvalidInput
from node.storage.context import StoreContext, iso
from node.storage.db import transaction
from protocol.encoding import pack
from protocol.payloads import StatsCell

# Re-exported for the statistics service and the CLI.
PENDING, SUBMITTED, REJECTED = ReportState.PENDING, ReportState.SUBMITTED, ReportState.REJECTED


def cells_hash(period: str, cells: Sequence[StatsCell]) -> str:
    """SHA-256 over the period and the canonical cells (counts and cell keys): equal
    data, equal hash. Cell keys are deterministic, so unchanged cases hash the same."""
    canonical = sorted((c.measure, sorted(c.dims.items()), c.count, c.cell_key) for c in cells)
    rows = [[m, list(d), n, k] for m, d, n, k in canonical]
    return hashlib.sha256(pack([period, rows])).hexdigest()


@dataclass(frozen=True)
class Submission:
    period: str
    revision: int
    cells_hash: str
    cell_count: int
    generated: int
    state: ReportState
    msg_id: str
    envelope: bytes | None
    expires: int
    attempts: int
    next_attempt: int
    last_error: str | None
    submitted_at: int | None
    # The period's cells hash after an erasure, which counts as unchanged
    # (migration 0007, node/stats/erasure.py).
    erasure_hash: str | None = None
    # When an administrator dismissed the warning of a refused revision.
    dismissed: int | None = None

    def matches(self, cells_hash: str) -> bool:
        """Whether cells with this hash are what this revision reported, erasures aside."""
        return cells_hash in (self.cells_hash, self.erasure_hash)

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> Submission:
        env = r["envelope"]
        return cls(
            period=r["period"],
            revision=int(r["revision"]),
            cells_hash=r["cells_hash"],
            cell_count=int(r["cell_count"]),
            generated=int(r["generated"]),
            state=ReportState(r["state"]),
            msg_id=r["msg_id"],
            envelope=None if env is None else bytes(env),
            expires=int(r["expires"]),
            attempts=int(r["attempts"]),
            next_attempt=int(r["next_attempt"]),
            last_error=r["last_error"],
            submitted_at=r["submitted_at"],
            erasure_hash=r.get("erasure_hash"),
            dismissed=r.get("dismissed"),
        )

    def view(self) -> dict[str, Any]:
        """The row as the API and CLI show it (no envelope, no hash)."""
        return {
            "period": self.period,
            "revision": self.revision,
            "state": self.state,
            "cell_count": self.cell_count,
            "generated": iso(self.generated),
            "attempts": self.attempts,
            "next_attempt": iso(self.next_attempt) if self.state == PENDING else None,
            "last_error": self.last_error,
            "submitted_at": iso(self.submitted_at),
        }


class StatsLedger:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    def latest(self, period: str) -> Submission | None:
        row = self.ctx.one(
            "SELECT * FROM stats_reports WHERE period = ? ORDER BY revision DESC LIMIT 1",
            (period,),
        )
        return None if row is None else Submission.from_row(row)

    def latest_submitted(self) -> list[Submission]:
        """The newest revision of every period whose newest revision is submitted."""
        rows = self.ctx.all(
            "SELECT r.* FROM stats_reports r WHERE r.state = ? AND r.revision ="
            " (SELECT MAX(revision) FROM stats_reports x WHERE x.period = r.period)"
            " ORDER BY r.period",
            (SUBMITTED,),
        )
        return [Submission.from_row(r) for r in rows]

    def dismiss(self, period: str) -> Submission:
        """Dismiss the warning of the period's newest revision, which the hub refused."""
        with transaction(self.ctx.db):
            latest = self.latest(period)
            if latest is None or latest.state != REJECTED:
                raise InvalidInput(
                    f"period {period}: its newest report was not refused by the hub;"
                    " nothing to dismiss"
                )
            self.ctx.run(
                "UPDATE stats_reports SET dismissed = ? WHERE period = ? AND revision = ?",
                (self.ctx.now(), period, latest.revision),
            )
        found = self.latest(period)
        assert found is not None  # read in the transaction above
        return found

    def set_erasure_hash(self, period: str, revision: int, cells_hash: str) -> None:
        self.ctx.run(
            "UPDATE stats_reports SET erasure_hash = ? WHERE period = ? AND revision = ?",
            (cells_hash, period, revision),
        )

    def next_revision(self, period: str) -> int:
        row = self.ctx.one(
            "SELECT MAX(revision) AS r FROM stats_reports WHERE period = ?", (period,)
        )
        return int(row["r"] or 0) + 1 if row else 1

    def submissions(self, period: str | None = None) -> list[Submission]:
        rows = self.ctx.all(
            "SELECT * FROM stats_reports WHERE ? IS NULL OR period = ? ORDER BY period, revision",
            (period, period),
        )
        return [Submission.from_row(r) for r in rows]

    def pending_due(self, now: int) -> list[Submission]:
        rows = self.ctx.all(
            "SELECT * FROM stats_reports WHERE state = ? AND next_attempt <= ?"
            " ORDER BY next_attempt, period",
            (PENDING, now),
        )
        return [Submission.from_row(r) for r in rows]

    def next_pending_time(self) -> int | None:
        row = self.ctx.one(
            "SELECT MIN(next_attempt) AS t FROM stats_reports WHERE state = ?", (PENDING,)
        )
        return None if row is None or row["t"] is None else int(row["t"])

    def insert_pending(self, sub: Submission) -> None:
        with transaction(self.ctx.db):
            self.ctx.run(
                "INSERT INTO stats_reports (period, revision, cells_hash, cell_count, generated,"
                " state, msg_id, envelope, expires, attempts, next_attempt, last_error,"
                " submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, NULL, NULL)",
                (
                    sub.period,
                    sub.revision,
                    sub.cells_hash,
                    sub.cell_count,
                    sub.generated,
                    PENDING,
                    sub.msg_id,
                    sub.envelope,
                    sub.expires,
                    sub.next_attempt,
                ),
            )

    def reseal(self, sub: Submission) -> None:
        """Replace a pending row's expired envelope (same revision, current cells)."""
        with transaction(self.ctx.db):
            self.ctx.run(
                "UPDATE stats_reports SET cells_hash = ?, cell_count = ?, generated = ?,"
                " msg_id = ?, envelope = ?, expires = ? WHERE period = ? AND revision = ?"
                " AND state = ?",
                (
                    sub.cells_hash,
                    sub.cell_count,
                    sub.generated,
                    sub.msg_id,
                    sub.envelope,
                    sub.expires,
                    sub.period,
                    sub.revision,
                    PENDING,
                ),
            )

    def mark_submitted(self, period: str, revision: int, now: int) -> None:
        self._settle(period, revision, ReportEvent.STORED, None, now)

    def mark_rejected(self, period: str, revision: int, error: str, now: int) -> None:
        self._settle(period, revision, ReportEvent.REFUSED, error, None)

    def _settle(
        self, period: str, revision: int, event: ReportEvent, error: str | None, at: int | None
    ) -> None:
        """Settle a pending revision (node/domain/report_states.py); a settled one stays."""
        (source,) = from_states(event)
        with transaction(self.ctx.db):
            self.ctx.run(
                "UPDATE stats_reports SET state = ?, envelope = NULL, attempts = attempts + 1,"
                " last_error = ?, submitted_at = ? WHERE period = ? AND revision = ?"
                " AND state = ?",
                (
                    after(event),
                    None if error is None else error[:200],
                    at,
                    period,
                    revision,
                    source,
                ),
            )

    def mark_retry(self, period: str, revision: int, error: str, next_attempt: int) -> None:
        (source,) = from_states(ReportEvent.RETRY)
        with transaction(self.ctx.db):
            self.ctx.run(
                "UPDATE stats_reports SET attempts = attempts + 1, last_error = ?,"
                " next_attempt = ? WHERE period = ? AND revision = ? AND state = ?",
                (error[:200], next_attempt, period, revision, source),
            )
