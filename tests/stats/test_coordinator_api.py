"""The coordinator API publishes exactly the expected protected aggregates of three offices."""

from __future__ import annotations

import csv
import io
from typing import Any

from protocol import codes
from tests.stats.hubside import (
    ACTIVE,
    DAY,
    OFFICE_B,
    PERIOD,
    StatsHub,
    make_report,
    three_offices,
)

Cell = dict[str, Any]


def e(value: int, few: bool = False) -> Cell:
    """A published number."""
    return {"value": value, "suppressed": False, "few_offices": few}


def hidden(few: bool = False) -> Cell:
    """A suppressed number (its reason is never published)."""
    return {"value": None, "suppressed": True, "few_offices": few}


Z = e(0)
TOPICS = sorted(codes.TOPIC)
RESIDENCES = sorted(codes.RESIDENCE)


def one_d(labels: list[str], values: dict[str, Cell], total: Cell) -> dict[str, Any]:
    return {
        "row_labels": labels,
        "row_totals": [values.get(label, Z) for label in labels],
        "col_labels": [],
        "cells": [[] for _ in labels],
        "col_totals": [],
        "total": total,
    }


def numbers(table: dict[str, Any]) -> dict[str, Any]:
    keys = ("row_labels", "row_totals", "col_labels", "cells", "col_totals", "total")
    return {k: table[k] for k in keys}


REGION_FIGURES = {
    "cases_new": e(11),
    "cases_active": e(41),
    "cases_closed": hidden(few=True),
    "case_management_with_agreement": Z,
    "contacts": e(30, few=True),
    "family_members": Z,
    "referrals_sent": e(3, few=True),
    "referrals_accepted": Z,
}
REGION_TOPIC = one_d(
    TOPICS,
    {
        "debt": e(6, few=True),
        "family": hidden(few=True),  # 1: primary
        "housing": hidden(few=True),  # 3: the smallest complement of the lone 1
        "language_course": e(6, few=True),
        "residence_law": e(24),
    },
    e(41),
)
REGION_RESIDENCE = one_d(
    RESIDENCES,
    {
        "asylum_pending": e(8, few=True),
        "eu_citizen": e(5, few=True),
        "residence_permit": e(7, few=True),
        "settlement_permit": e(12, few=True),
        "toleration": e(9, few=True),
    },
    e(41),
)


async def test_region_overview_publishes_exactly_the_expected_numbers(
    stats_hub: StatsHub,
) -> None:
    """Every number of the overview (8 totals, 2 charts) equals the hand-computed value."""
    await three_offices(stats_hub)
    token = stats_hub.token()
    doc = await stats_hub.get_json(f"/coordinator/v1/overview?period={PERIOD}", token)
    tables = doc["tables"]
    figures = {t["measure"]: t["total"] for t in tables if t["rows"] is None}
    assert figures == REGION_FIGURES
    charts = {t["rows"]: numbers(t) for t in tables if t["rows"] is not None}
    assert charts == {"topic": REGION_TOPIC, "residence": REGION_RESIDENCE}
    assert {t["reporting_offices"] for t in tables} == {3}
    assert {(t["disclosure"]["k"], t["disclosure"]["min_offices"]) for t in tables} == {(3, 3)}


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
        (r["measure"], r["row_dim"], r["row"]): (r["value"], r["status"], r["few_offices"])
        for r in rows
    }
    expected = {}
    for t in doc["tables"]:
        pairs = [("total", t["total"]), *zip(t["row_labels"], t["row_totals"], strict=True)]
        for label, cell in pairs:
            value = "" if cell["value"] is None else str(cell["value"])
            status = "suppressed" if cell["suppressed"] else "published"
            expected[(t["measure"], t["rows"] or "", label)] = (
                value,
                status,
                str(int(cell["few_offices"])),
            )
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
    col = {label: i for i, label in enumerate(RESIDENCES)}

    def row(values: dict[str, Cell]) -> list[Cell]:
        out = [Z] * len(RESIDENCES)
        for label, cell in values.items():
            out[col[label]] = cell
        return out

    caritas = {
        "asylum_pending": e(8, True),
        "eu_citizen": e(5, True),
        "residence_permit": e(7, True),
        "settlement_permit": e(12, True),
    }
    assert numbers(doc) == {
        "row_labels": ["Caritas", "Diakonie"],
        "row_totals": [e(32, True), e(9, True)],
        "col_labels": RESIDENCES,
        "cells": [row(caritas), row({"toleration": e(9, True)})],
        "col_totals": row({**caritas, "toleration": e(9, True)}),
        "total": e(41),
    }
    doc = await stats_hub.get_json(
        f"/coordinator/v1/tables?period={PERIOD}&measure=cases_new&rows=office", token
    )
    offices = sorted([(a.node_id, e(6, True)), (b.node_id, e(4, True)), (c.node_id, hidden(True))])
    # Office c's 1 is primary; b's 4 is the smallest complement on the line.
    expected = {n: cell for n, cell in offices}
    expected[b.node_id] = hidden(True)
    assert numbers(doc) == one_d([n for n, _ in offices], expected, e(11))


async def test_a_new_revision_changes_the_published_numbers(stats_hub: StatsHub) -> None:
    """A late correction (revision 2) replaces the office's numbers in every aggregate."""
    _, b, _ = await three_offices(stats_hub)
    token = stats_hub.token()
    corrected = dict(OFFICE_B)
    corrected[(ACTIVE, ())] = 15
    corrected[(ACTIVE, (("residence", "asylum_pending"),))] = 11
    corrected[(ACTIVE, (("topic", "debt"),))] = 9
    stats_hub.clock.advance(20 * DAY)
    assert (await stats_hub.submit(b, make_report(corrected, revision=2))).status == 200
    doc = await stats_hub.get_json(f"/coordinator/v1/overview?period={PERIOD}", token)
    charts = {t["rows"]: t for t in doc["tables"] if t["rows"]}
    figures = {t["measure"]: t["total"] for t in doc["tables"] if t["rows"] is None}
    assert figures["cases_active"] == e(44)
    residence = dict(zip(RESIDENCES, charts["residence"]["row_totals"], strict=True))
    assert residence["asylum_pending"] == e(11, True)
    topic = dict(zip(TOPICS, charts["topic"]["row_totals"], strict=True))
    assert topic["debt"] == e(9, True)
    # Timeliness is judged by the first revision: b stays on time.
    comp = await stats_hub.get_json(f"/coordinator/v1/completeness?period={PERIOD}", token)
    status = {o["office"]: (o["status"], o["revision"]) for o in comp["offices"]}
    assert status[b.node_id] == ("on_time", 2)


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
