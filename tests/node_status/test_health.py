"""SyncHealth read from a real node database: counts, ages, directory expiry, statistics."""

from __future__ import annotations

import sqlite_utils

from node.storage.health import OUTBOX_STUCK, STATS_REJECTED, read_health
from node.sync.ports import STATE_HUB_REACHABLE, STATE_LAST_SYNC, STATE_PUSH_CONNECTED
from tests.node.conftest import CASE, T0, consent_for, make_office


def _stats_row(db: sqlite_utils.Database, period: str, revision: int, state: str) -> None:
    db.execute(
        "INSERT INTO stats_reports (period, revision, cells_hash, cell_count, generated, state,"
        " msg_id, envelope, expires, attempts, next_attempt, last_error, submitted_at)"
        " VALUES (?, ?, 'h', 3, ?, ?, ?, NULL, ?, 1, ?, NULL, ?)",
        (period, revision, T0, state, f"{revision:032x}", T0 + 86400, T0, T0),
    )


def test_figures_come_from_the_database() -> None:
    """Outbox, inbox, sync flags, directory expiry and the newest statistics revision."""
    office = make_office("caritas-nbg")
    store = office.store
    case_id = store.cases.create(dict(CASE))
    store.consents.record(case_id, consent_for("awo-fue", ["family_name"]))
    store.referrals.create(
        {
            "case_id": case_id,
            "recipient": "awo-fue",
            "target_type": "mbe",
            "fields": ["family_name"],
        }
    )
    store.sync.set_sync_state(STATE_HUB_REACHABLE, "true")
    store.sync.set_sync_state(STATE_PUSH_CONNECTED, "false")
    store.sync.set_sync_state(STATE_LAST_SYNC, str(T0 - 30))
    _stats_row(store.db, "2026-08", 1, "submitted")
    _stats_row(store.db, "2026-08", 2, "rejected")
    _stats_row(store.db, "2026-07", 1, "submitted")
    office.clock.advance(2 * 3600)

    h = read_health(store.ctx, store.network)
    assert (h.enrolled, h.node_id, h.hub_url) == (True, "caritas-nbg", "http://127.0.0.1:1")
    assert (h.hub_reachable, h.push_connected, h.last_sync) == (True, False, T0 - 30)
    assert (h.outbox_depth, h.oldest_unsent_age, h.outbox_rejected) == (1, 7200, 0)
    assert (h.inbox_awaiting, h.refused_messages, h.withdrawals_pending) == (0, 0, 0)
    assert (h.directory_version, h.directory_expires) == (1, T0 + 30 * 86400)
    assert [(s.period, s.revision, s.state) for s in h.stats] == [
        ("2026-08", 2, "rejected"),
        ("2026-07", 1, "submitted"),
    ]
    assert h.warnings() == (OUTBOX_STUCK, STATS_REJECTED)
    assert store.status()["warnings"] == ["outbox_stuck", "stats_rejected"]
    office.store.close()


def test_expired_directory_is_still_shown_with_its_date() -> None:
    """Past its expiry the directory's date is still read (the page marks it expired)."""
    office = make_office("caritas-nbg")
    office.clock.advance(31 * 86400)
    h = office.store.health()
    assert h.directory_expires == T0 + 30 * 86400
    assert h.directory_expired
    assert "directory_expired" in h.warnings()
    office.store.close()


def test_unenrolled_node() -> None:
    """A node before enrollment: one warning, no ids, no directory."""
    office = make_office("caritas-nbg", enrolled=False)
    h = office.store.health()
    assert (h.enrolled, h.node_id, h.directory_version, h.directory_expires) == (
        False,
        None,
        None,
        None,
    )
    assert h.warnings() == ("not_enrolled",)
    office.store.close()
