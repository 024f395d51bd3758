"""The coordinator API publishes exactly the expected protected aggregates of three offices,
once, after the period's deadline."""

from __future__ import annotations

import csv
import io
from typing import Any

from hub.stats.store import revisions
from hub.stats.view import KEY_MEASURES
from protocol import codes
from tests.hub.client import problem_kind
from tests.hub.engines import hub_db
from tests.stats.hubside import (
    ACTIVE,
    CLOSED,
    DAY,
    NEW,
    OFFICE_A,
    OFFICE_B,
    OFFICE_C,
    PERIOD,
    PUBLISHED,
    Cells,
    StatsHub,
    make_report,
    published,
    three_offices,
)

Cell = dict[str, Any]
ALL = (OFFICE_A, OFFICE_B, OFFICE_C)
TOPICS = sorted(codes.TOPIC)
RESIDENCES = sorted(codes.RESIDENCE)


def e(offices: tuple[Cells, ...], measure: str, dims: tuple[tuple[str, str], ...] = ()) -> Cell:
    """The published entry of one number: perturbed by its cell key, flagged if few offices."""
    ident = (measure, dims)
    contributors = sum(1 for cells in offices if cells.get(ident, 0) > 0)
    value = published(offices, ident)
    return {"value": value, "few_offices": value > 0 and 0 < contributors < 3}


def one_d(offices: tuple[Cells, ...], measure: str, dim: str, labels: list[str]) -> dict[str, Any]:
    return {
        "row_labels": labels,
        "row_totals": [e(offices, measure, ((dim, label),)) for label in labels],
        "col_labels": [],
        "cells": [[] for _ in labels],
        "col_totals": [],
        "total": e(offices, measure),
    }


def numbers(table: dict[str, Any]) -> dict[str, Any]:
    keys = ("row_labels", "row_totals", "col_labels", "cells", "col_totals", "total")
    return {k: table[k] for k in keys}


async def test_region_overview_publishes_exactly_the_expected_numbers(
    stats_hub: StatsHub,
) -> None:
    """Every number of the overview (9 totals, 2 charts) is the true sum perturbed by its key."""
    await three_offices(stats_hub)
    token = stats_hub.token()
    doc = await stats_hub.get_json(f"/coordinator/v1/overview?period={PERIOD}", token)
    tables = doc["tables"]
    figures = {t["measure"]: t["total"] for t in tables if t["rows"] is None}
    assert figures == {m: e(ALL, m) for m in KEY_MEASURES}
    # Only office A closed cases: flagged, unless the number is published as 0.
    assert figures[CLOSED]["few_offices"] == (figures[CLOSED]["value"] > 0)
    charts = {t["rows"]: numbers(t) for t in tables if t["rows"] is not None}
    assert charts == {
        "topic": one_d(ALL, ACTIVE, "topic", TOPICS),
        "residence": one_d(ALL, ACTIVE, "residence", RESIDENCES),
    }
    assert {t["reporting_offices"] for t in tables} == {3}
    assert {t["disclosure"]["method"] for t in tables} == {"cell-key"}
    for t in tables:
        for entry in [t["total"], *t["row_totals"]]:
            assert entry["value"] not in (1, 2)


async def test_csv_carries_the_same_numbers_as_json(stats_hub: StatsHub) -> None:
    """The overview CSV has one line per JSON number, with equal values and flags."""
    await three_offices(stats_hub)
    token = stats_hub.token()
    doc = await stats_hub.get_json(f"/coordinator/v1/overview?period={PERIOD}", token)
    resp = await stats_hub.http.request(
        "GET",
        f"/coordinator/v1/overview?period={PERIOD}&format=csv",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    from_csv = {
        (r["measure"], r["row_dim"], r["row"]): (r["value"], r["few_offices"]) for r in rows
    }
    expected = {}
    for t in doc["tables"]:
        pairs = [("total", t["total"]), *zip(t["row_labels"], t["row_totals"], strict=True)]
        for label, cell in pairs:
            key = (t["measure"], t["rows"] or "", label)
            expected[key] = (str(cell["value"]), str(int(cell["few_offices"])))
    assert from_csv == expected
    assert len(rows) == len(expected)


async def test_two_dimensional_and_office_tables(stats_hub: StatsHub) -> None:
    """Organisation x residence and the per-office table of new cases, number by number."""
    a, b, c = await three_offices(stats_hub)
    token = stats_hub.token()
    doc = await stats_hub.get_json(
        f"/coordinator/v1/tables?period={PERIOD}&measure={ACTIVE}&rows=organisation&cols=residence",
        token,
    )
    caritas, diakonie = (OFFICE_A, OFFICE_B), (OFFICE_C,)

    def row(offices: tuple[Cells, ...]) -> list[Cell]:
        return [e(offices, ACTIVE, (("residence", r),)) for r in RESIDENCES]

    assert numbers(doc) == {
        "row_labels": ["Caritas", "Diakonie"],
        "row_totals": [e(caritas, ACTIVE), e(diakonie, ACTIVE)],
        "col_labels": RESIDENCES,
        "cells": [row(caritas), row(diakonie)],
        "col_totals": row(ALL),
        "total": e(ALL, ACTIVE),
    }
    doc = await stats_hub.get_json(
        f"/coordinator/v1/tables?period={PERIOD}&measure=cases_new&rows=office", token
    )
    offices = sorted([(a.node_id, OFFICE_A), (b.node_id, OFFICE_B), (c.node_id, OFFICE_C)])
    assert doc["row_labels"] == [n for n, _ in offices]
    assert doc["row_totals"] == [e((cells,), NEW) for _, cells in offices]
    assert doc["total"] == e(ALL, NEW)
    # Office C's one new case is never published as 1 (0, 3 or 4 instead).
    assert doc["row_totals"][[n for n, _ in offices].index(c.node_id)]["value"] in (0, 3, 4)


def _corrected_b() -> Cells:
    corrected = dict(OFFICE_B)
    corrected[(ACTIVE, ())] = 15
    corrected[(ACTIVE, (("residence", "asylum_pending"),))] = 11
    corrected[(ACTIVE, (("topic", "debt"),))] = 9
    return corrected


async def test_before_the_deadline_numbers_are_not_published(stats_hub: StatsHub) -> None:
    """Until the deadline day has ended, tables and overview answer 409 not-published."""
    await three_offices(stats_hub, publish=False)
    token = stats_hub.token()
    stats_hub.clock.t = PUBLISHED - 2 * 3600  # 15 December, 23:00 in Berlin
    for path in (
        f"/coordinator/v1/overview?period={PERIOD}",
        f"/coordinator/v1/tables?period={PERIOD}&measure={ACTIVE}&rows=organisation",
        f"/coordinator/v1/overview?period={PERIOD}&format=csv",
    ):
        resp = await stats_hub.http.request(
            "GET", path, headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status == 409, path
        body = await resp.json()
        assert problem_kind(body) == "not-published"
        assert "2026-12-15" in body["detail"]
    comp = await stats_hub.get_json(f"/coordinator/v1/completeness?period={PERIOD}", token)
    assert comp["published"] is False
    stats_hub.clock.t = PUBLISHED
    comp = await stats_hub.get_json(f"/coordinator/v1/completeness?period={PERIOD}", token)
    assert (comp["published"], comp["late_revisions"]) == (True, 0)


async def test_a_revision_before_the_deadline_counts(stats_hub: StatsHub) -> None:
    """A correction (revision 2) that arrives in time replaces the office's numbers."""
    _, b, _ = await three_offices(stats_hub, publish=False)
    stats_hub.clock.advance(5 * DAY)
    assert (await stats_hub.submit(b, make_report(_corrected_b(), revision=2))).status == 200
    stats_hub.clock.t = PUBLISHED
    token = stats_hub.token()
    doc = await stats_hub.get_json(f"/coordinator/v1/overview?period={PERIOD}", token)
    figures = {t["measure"]: t["total"] for t in doc["tables"] if t["rows"] is None}
    assert figures[ACTIVE] == e((OFFICE_A, _corrected_b(), OFFICE_C), ACTIVE)


async def test_a_revision_after_the_deadline_changes_no_published_number(
    stats_hub: StatsHub,
) -> None:
    """A late correction and a late first report are stored and audited but change nothing."""
    _, b, _ = await three_offices(stats_hub)
    token = stats_hub.token()
    paths = [
        f"/coordinator/v1/overview?period={PERIOD}",
        f"/coordinator/v1/tables?period={PERIOD}&measure={ACTIVE}&rows=organisation&cols=topic",
        f"/coordinator/v1/tables?period={PERIOD}&measure={ACTIVE}&rows=office&cols=residence",
        f"/coordinator/v1/tables?period={PERIOD}&measure={NEW}&rows=organisation",
    ]
    before = [await stats_hub.get_json(p, token) for p in paths]
    stats_hub.clock.advance(20 * DAY)
    assert (await stats_hub.submit(b, make_report(_corrected_b(), revision=2))).status == 200
    newcomer = await stats_hub.node("Caritas Bonn", "Caritas")
    assert (await stats_hub.submit(newcomer, make_report({(NEW, ()): 7}))).status == 200
    after = [await stats_hub.get_json(p, token) for p in paths]
    assert after == before
    db = hub_db(stats_hub.settings)
    try:
        stored = revisions(db, b.node_id, PERIOD)
        audited = db.execute(
            "SELECT detail FROM audit_log WHERE action = 'stats.report' AND actor = ?",
            (b.node_id,),
        ).fetchall()
    finally:
        db.close()
    assert [(r.revision, r.current) for r in stored] == [(1, False), (2, True)]
    assert [d[0].split()[0] for d in audited] == ["revision=1", "revision=2"]
    comp = await stats_hub.get_json(f"/coordinator/v1/completeness?period={PERIOD}", token)
    assert comp["late_revisions"] == 2
    status = {o["office"]: (o["status"], o["revision"]) for o in comp["offices"]}
    assert status[b.node_id] == ("on_time", 2)  # timeliness is judged by the first revision


async def test_completeness_tells_on_time_late_missing_and_pending(stats_hub: StatsHub) -> None:
    """Before the deadline a silent office is pending, after it missing; late is late."""
    a = await stats_hub.node("Caritas Köln-Mitte", "Caritas")
    b = await stats_hub.node("Caritas Köln-Porz", "Caritas")
    c = await stats_hub.node("Diakonie Köln-Nord", "Diakonie")
    stats_hub.add_site("AWO Bonn", "AWO")  # never enrolled: not expected
    token = stats_hub.token()
    assert (await stats_hub.submit(a, make_report({(ACTIVE, ()): 5}))).status == 200
    url = f"/coordinator/v1/completeness?period={PERIOD}"
    doc = await stats_hub.get_json(url, token)
    assert doc["deadline"] == "2026-12-15"
    assert {o["office"]: o["status"] for o in doc["offices"]} == {
        a.node_id: "on_time",
        b.node_id: "pending",
        c.node_id: "pending",
    }
    stats_hub.clock.advance(15 * DAY)  # 20 December
    late = await stats_hub.node("Caritas Bonn", "Caritas")  # enrolled after the deadline
    assert (await stats_hub.submit(b, make_report({(ACTIVE, ()): 4}))).status == 200
    doc = await stats_hub.get_json(url, token)
    rows = {o["office"]: o for o in doc["offices"]}
    assert late.node_id not in rows
    assert {o: r["status"] for o, r in rows.items()} == {
        a.node_id: "on_time",
        b.node_id: "late",
        c.node_id: "missing",
    }
    assert rows[a.node_id]["first_received"] == "2026-12-05"
    assert rows[b.node_id]["first_received"] == "2026-12-20"
    assert rows[c.node_id]["first_received"] is None


async def test_bad_table_requests_are_refused(stats_hub: StatsHub) -> None:
    """Unknown measure, bad period, bad scope or format: 400 problem+json."""
    token = stats_hub.token()
    for query in (
        f"period={PERIOD}&measure=nope",
        "period=2026-13&measure=cases_new",
        f"period={PERIOD}&measure=cases_new&scope=planet:earth",
        f"period={PERIOD}&measure=cases_new&format=xml",
        f"period={PERIOD}&measure=cases_new&cols=gender",
    ):
        resp = await stats_hub.http.request(
            "GET", f"/coordinator/v1/tables?{query}", headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status == 400, query
        assert resp.content_type == "application/problem+json"
