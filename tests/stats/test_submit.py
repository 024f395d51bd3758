"""POST /v1/stats: verification, the revision rule, durable storage and the audit log."""

from __future__ import annotations

import os
from typing import Any

import pytest

from hub.stats.cells import dims_text
from hub.stats.store import revision_cells, revisions
from protocol.envelope import InnerMessage, seal
from protocol.ids import HUB_ID
from protocol.payloads import Receipt
from tests.hub.client import HubClient, problem_kind
from tests.hub.engines import hub_db
from tests.stats.hubside import (
    ACTIVE,
    DAY,
    OFFICE_A,
    OFFICE_B,
    PERIOD,
    StatsHub,
    make_report,
    sealed_report,
)


async def test_a_sealed_report_is_stored_and_answered(stats_hub: StatsHub) -> None:
    """A node's sealed, signed report is stored as revision 1 and acknowledged as JSON."""
    node = await stats_hub.node("Caritas Köln-Mitte", "Caritas")
    resp = await stats_hub.submit(node, make_report(OFFICE_A))
    assert resp.status == 200
    assert await resp.json() == {"period": PERIOD, "revision": 1, "stored": True}
    db = hub_db(stats_hub.settings)
    try:
        stored = revisions(db, node.node_id, PERIOD)
        assert [(r.revision, r.current) for r in stored] == [(1, True)]
        assert revision_cells(db, node.node_id, PERIOD, 1) == OFFICE_A
    finally:
        db.close()


async def test_new_revision_keeps_the_old_one_and_audits_both(stats_hub: StatsHub) -> None:
    """Revision 2 becomes current; revision 1 stays stored unchanged; each is in the audit log."""
    node = await stats_hub.node("Caritas Köln-Porz", "Caritas")
    assert (await stats_hub.submit(node, make_report(OFFICE_B))).status == 200
    changed = dict(OFFICE_B)
    changed[(ACTIVE, ())] = 13
    changed[(ACTIVE, (("residence", "asylum_pending"),))] = 9
    stats_hub.clock.advance(DAY)
    resp = await stats_hub.submit(node, make_report(changed, revision=2))
    assert await resp.json() == {"period": PERIOD, "revision": 2, "stored": True}
    db = hub_db(stats_hub.settings)
    try:
        stored = revisions(db, node.node_id, PERIOD)
        assert [(r.revision, r.current) for r in stored] == [(1, False), (2, True)]
        assert revision_cells(db, node.node_id, PERIOD, 1) == OFFICE_B
        assert revision_cells(db, node.node_id, PERIOD, 2) == changed
        audit = db.execute(
            "SELECT actor, action, subject, detail FROM audit_log WHERE action = 'stats.report' "
            "ORDER BY id"
        ).fetchall()
    finally:
        db.close()
    assert [(a, s, d.split()[0]) for a, _, s, d in audit] == [
        (node.node_id, PERIOD, "revision=1"),
        (node.node_id, PERIOD, "revision=2"),
    ]


async def test_a_revision_not_newer_is_a_conflict(stats_hub: StatsHub) -> None:
    """The same or a lower revision with other content is refused with 409 conflict."""
    node = await stats_hub.node("Caritas Köln-Porz", "Caritas")
    assert (await stats_hub.submit(node, make_report(OFFICE_B, revision=2))).status == 200
    for revision in (2, 1):
        resp = await stats_hub.submit(node, make_report(OFFICE_A, revision=revision))
        assert resp.status == 409
        assert resp.content_type == "application/problem+json"
        assert problem_kind(await resp.json()) == "conflict"


async def test_a_retried_message_is_idempotent(stats_hub: StatsHub) -> None:
    """The same message sent again (lost answer) is answered as stored, with no second row."""
    node = await stats_hub.node("Caritas Köln-Porz", "Caritas")
    msg_id = os.urandom(16).hex()
    for _ in range(2):
        resp = await stats_hub.submit(node, make_report(OFFICE_B), msg_id=msg_id)
        assert await resp.json() == {"period": PERIOD, "revision": 1, "stored": True}
    db = hub_db(stats_hub.settings)
    try:
        assert len(revisions(db, node.node_id, PERIOD)) == 1
    finally:
        db.close()


async def test_unsigned_and_foreign_requests_are_refused(stats_hub: StatsHub) -> None:
    """No signature: 401; an envelope whose sender is another node: 403 forbidden."""
    a = await stats_hub.node("Caritas Köln-Mitte", "Caritas")
    b = await stats_hub.node("Caritas Köln-Porz", "Caritas")
    body = sealed_report(a, make_report(OFFICE_A), stats_hub.clock.now())
    resp = await stats_hub.http.request("POST", "/v1/stats", data=body)
    assert resp.status == 401
    resp = await HubClient(stats_hub.http, b, stats_hub.clock).signed("POST", "/v1/stats", body)
    assert resp.status == 403
    assert problem_kind(await resp.json()) == "forbidden"


async def test_wrong_payloads_are_refused(stats_hub: StatsHub) -> None:
    """Not addressed to the hub, not a stats report, an open period, margins that miss."""
    node = await stats_hub.node("Caritas Köln-Mitte", "Caritas")
    now = stats_hub.clock.now()
    client = HubClient(stats_hub.http, node, stats_hub.clock)

    def sealed(payload: object, recipient: str = HUB_ID) -> bytes:
        inner = InnerMessage(os.urandom(16).hex(), node.node_id, recipient, now, now + DAY, payload)  # type: ignore[arg-type]  # payload under test
        return seal(inner, node.keys, node.hub_keys, ephemeral_secret=os.urandom(32)).encode()

    cases = [
        (sealed(make_report(OFFICE_A), recipient="someone-else"), 400, "wrong-recipient"),
        (sealed(Receipt(of_msg_id="0" * 32, received=now)), 400, "unknown-type"),
        (sealed(make_report(OFFICE_A, period="2026-12")), 422, "period-not-over"),
        (sealed(make_report({**OFFICE_A, (ACTIVE, ()): 21})), 422, "inconsistent-report"),
        (b"\x92\x01\x02", 400, "malformed"),
    ]
    for body, status, kind in cases:
        resp = await client.signed("POST", "/v1/stats", body)
        assert (resp.status, problem_kind(await resp.json())) == (status, kind)


class _VersionOneReport:
    """A report as nodes sent it before the cell key method: no version, no cell keys."""

    TYPE = "stats.report"

    def to_map(self) -> dict[str, object]:
        return {
            "dataset": "mbe-core",
            "period": PERIOD,
            "revision": 1,
            "generated": 0,
            "cells": [[m, dict(d), n] for (m, d), n in OFFICE_A.items()],
        }


async def test_a_report_without_cell_keys_is_refused_clearly(
    stats_hub: StatsHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old node's version-1 report: 400 unsupported-version naming the fix; nothing stored."""
    node = await stats_hub.node("Caritas Köln-Mitte", "Caritas")
    now = stats_hub.clock.now()
    old: Any = _VersionOneReport()  # not a Payload: the shape old nodes sent
    inner = InnerMessage(os.urandom(16).hex(), node.node_id, HUB_ID, now, now + DAY, old)
    with monkeypatch.context() as m:
        # seal() checks its own payload; this one is meant to be refused by the hub.
        m.setattr("protocol.envelope.decode_payload", lambda *_: None)
        body = seal(inner, node.keys, node.hub_keys, ephemeral_secret=os.urandom(32)).encode()
    resp = await HubClient(stats_hub.http, node, stats_hub.clock).signed("POST", "/v1/stats", body)
    problem = await resp.json()
    assert (resp.status, problem_kind(problem)) == (400, "unsupported-version")
    assert "version 2 or 3 is required" in problem["detail"]
    assert "update the node" in problem["detail"]
    db = hub_db(stats_hub.settings)
    try:
        assert revisions(db, node.node_id, PERIOD) == []
    finally:
        db.close()


async def test_cell_keys_are_stored_with_the_counts(stats_hub: StatsHub) -> None:
    """Every stored cell keeps the cell key the node sent, for the perturbation."""
    node = await stats_hub.node("Caritas Köln-Mitte", "Caritas")
    report = make_report(OFFICE_A)
    assert (await stats_hub.submit(node, report)).status == 200
    db = hub_db(stats_hub.settings)
    try:
        stored = {
            (m, d): k
            for m, d, k in db.execute(
                "SELECT s.measure, s.dims, c.cell_key FROM stats_report_cells c "
                "JOIN stats_cells s ON s.id = c.cell_id"
            )
        }
        versions = db.execute("SELECT DISTINCT dataset_version FROM stats_reports").fetchall()
    finally:
        db.close()
    assert stored == {(c.measure, dims_text(c.ident()[1])): c.cell_key for c in report.cells}
    assert versions == [(3,)]  # the current dataset version, as the report said
