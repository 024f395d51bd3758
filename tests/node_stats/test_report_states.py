"""A report revision's states (node/domain/report_states.py): settled ones stay settled."""

from __future__ import annotations

import pytest

from node.domain.report_states import TABLE, ReportEvent, ReportState, after, from_states
from node.storage.stats_ledger import StatsLedger, Submission
from tests.node.conftest import make_office


def test_only_a_pending_revision_moves() -> None:
    assert {s for s, _ in TABLE} == {ReportState.PENDING}
    assert after(ReportEvent.STORED) == ReportState.SUBMITTED
    assert after(ReportEvent.REFUSED) == ReportState.REJECTED
    assert after(ReportEvent.RETRY) == ReportState.PENDING
    assert from_states(ReportEvent.STORED) == (ReportState.PENDING,)
    with pytest.raises(TypeError):
        TABLE[(ReportState.SUBMITTED, ReportEvent.REFUSED)] = ReportState.REJECTED  # type: ignore[index]


def test_a_late_refusal_does_not_unsettle_a_submitted_revision() -> None:
    """The ledger's guarded UPDATEs follow the table: submitted stays submitted."""
    office = make_office("caritas-nbg")
    ledger = StatsLedger(office.store.ctx)
    ledger.insert_pending(
        Submission(
            period="2026-10",
            revision=1,
            cells_hash="h",
            cell_count=0,
            generated=1,
            state=ReportState.PENDING,
            msg_id="0" * 32,
            envelope=b"x",
            expires=10,
            attempts=0,
            next_attempt=1,
            last_error=None,
            submitted_at=None,
        )
    )
    ledger.mark_retry("2026-10", 1, "HubUnreachable", 5)
    assert ledger.latest("2026-10").state == ReportState.PENDING  # type: ignore[union-attr]
    ledger.mark_submitted("2026-10", 1, 7)
    ledger.mark_rejected("2026-10", 1, "malformed", 8)
    ledger.mark_retry("2026-10", 1, "HubUnreachable", 9)
    latest = ledger.latest("2026-10")
    assert latest is not None
    assert (latest.state, latest.submitted_at, latest.attempts) == (ReportState.SUBMITTED, 7, 2)
