"""The measures of unmet need at the hub: tabulated and protected like every number,
offered only by the dimensions nodes count them by, labelled in German, and taken from
version-3 reports while offices still on version 2 count as zero in them."""

from __future__ import annotations

import os
from typing import Any

import pytest

from hub.stats import labels
from hub.stats.aggregate import ORGANISATION, PeriodData, TableSpec, margin_problems, tabulate
from hub.stats.disclosure import DisclosurePolicy, protect
from hub.stats.errors import TableSpecError
from hub.stats.periods import parse_period
from hub.stats.store import revisions
from protocol import code_labels, codes
from protocol.cellkeys import KEY_SPACE
from protocol.envelope import InnerMessage, seal
from protocol.ids import HUB_ID
from protocol.payloads import StatsReport
from tests.hub.client import HubClient, problem_kind
from tests.hub.engines import hub_db
from tests.stats.hubside import (
    DAY,
    PERIOD,
    PUBLISHED,
    Cells,
    StatsHub,
    fixture_key,
    keyed_cells,
    make_report,
    published,
)

DECLINED, REASON = "referrals_declined", "referrals_declined_reason"
ANSWERED, UNANSWERED, SENT = "referrals_answered", "referrals_unanswered", "referrals_sent"
F = ("gender", "female")
JC = ("target", "jobcenter")


def _t(value: str) -> tuple[str, str]:
    return ("target", value)


OFFICE_A: Cells = {  # version 3, Caritas
    (SENT, ()): 4,
    (SENT, (JC,)): 3,
    (SENT, (_t("mbe"),)): 1,
    (DECLINED, ()): 2,
    (DECLINED, (JC,)): 2,
    (DECLINED, (F,)): 2,
    (DECLINED, (F, JC)): 2,
    (REASON, ()): 2,
    (REASON, (("decline_reason", "no_capacity"),)): 2,
    (REASON, (F,)): 2,
    (REASON, (("decline_reason", "no_capacity"), F)): 2,
    (ANSWERED, ()): 3,
    (ANSWERED, (("wait_band", "1_3_days"),)): 1,
    (ANSWERED, (("wait_band", "over_14_days"),)): 2,
    (UNANSWERED, ()): 1,
    (UNANSWERED, (("wait_band", "8_14_days"),)): 1,
}
OFFICE_B: Cells = {  # version 3, Caritas
    (SENT, ()): 1,
    (SENT, (JC,)): 1,
    (DECLINED, ()): 1,
    (DECLINED, (JC,)): 1,
    (REASON, ()): 1,
    (REASON, (("decline_reason", "not_responsible"),)): 1,
    (ANSWERED, ()): 1,
    (ANSWERED, (("wait_band", "same_day"),)): 1,
}
OFFICE_C: Cells = {  # still on version 2, Diakonie: no measure of unmet need
    (SENT, ()): 3,
    (SENT, (JC,)): 3,
}
ORGS = {"a": "caritas", "b": "caritas", "c": "diakonie"}


def _report(cells: Cells, version: int = codes.DATASET_VERSION) -> StatsReport:
    return StatsReport(PERIOD, 1, 0, keyed_cells(cells), version=version)


def _data() -> PeriodData:
    reports = {"a": _report(OFFICE_A), "b": _report(OFFICE_B), "c": _report(OFFICE_C, 2)}
    return PeriodData.from_reports(parse_period(PERIOD), reports, ORGS)


def _key(ident: tuple[str, tuple[tuple[str, str], ...]], *offices: Cells) -> int:
    return sum(fixture_key(*ident, o[ident]) for o in offices if ident in o) % KEY_SPACE


def test_declines_by_target_sum_the_upgraded_offices_and_count_version_2_as_zero() -> None:
    """Every target is a row; the version-2 office adds nothing to the declines but
    still counts among the reporting offices and in the referrals sent."""
    table = tabulate(_data(), TableSpec(DECLINED, "target"))
    assert table.row_labels == tuple(sorted(codes.REFERRAL_TARGET))
    by_target = dict(zip(table.row_labels, table.row_totals, strict=True))
    assert by_target == {t: 3 if t == "jobcenter" else 0 for t in codes.REFERRAL_TARGET}
    assert table.row_keys[table.row_labels.index("jobcenter")] == _key(
        (DECLINED, (JC,)), OFFICE_A, OFFICE_B
    )
    assert (table.total, table.total_offices, table.reporting_offices) == (3, 2, 3)
    sent = tabulate(_data(), TableSpec(SENT, "target"))
    assert sent.row_totals[sent.row_labels.index("jobcenter")] == 7


def test_new_measures_are_protected_by_their_own_cell_keys() -> None:
    """Each published number is its count perturbed at its key, like every other number."""
    policy = DisclosurePolicy()
    reason = protect(tabulate(_data(), TableSpec(REASON, "decline_reason", "gender")), policy)
    entries = {(r, c): e for r, c, e in reason.entries()}
    cell = (REASON, (("decline_reason", "no_capacity"), F))
    assert entries[("no_capacity", "female")].value == policy.table.perturb(2, _key(cell, OFFICE_A))
    assert entries[("not_responsible", None)].value == policy.table.perturb(
        1, _key((REASON, (("decline_reason", "not_responsible"),)), OFFICE_B)
    )
    waits = protect(tabulate(_data(), TableSpec(ANSWERED, "wait_band")), policy)
    assert [r for r, c, _ in waits.entries() if r is not None] == sorted(codes.WAIT_BAND)
    total = next(e for r, c, e in waits.entries() if r is None and c is None)
    assert total.value == policy.table.perturb(4, _key((ANSWERED, ()), OFFICE_A, OFFICE_B))
    unanswered = tabulate(_data(), TableSpec(UNANSWERED, ORGANISATION, "wait_band"))
    assert unanswered.row_labels == ("caritas", "diakonie")
    assert unanswered.row_totals == (1, 0)


@pytest.mark.parametrize("measure", sorted(codes.MEASURES_SINCE))
def test_tables_are_offered_only_by_what_nodes_count(measure: str) -> None:
    """Breakdown, one crossing dimension, their pair: yes; nationality or two crossings: no."""
    own = codes.MEASURES[measure]
    assert own is not None
    TableSpec(measure, own[0], "gender")
    TableSpec(measure, "residence", own[0])
    TableSpec(measure, ORGANISATION, "topic")
    for rows, cols in [("nationality", None), (own[0], "nationality"), ("gender", "residence")]:
        with pytest.raises(TableSpecError):
            TableSpec(measure, rows, cols)
    TableSpec(SENT, "gender", "residence")  # the older measures keep their pairs


def test_every_new_measure_dimension_and_code_reads_in_german() -> None:
    """Measures, breakdowns, wait bands and decline reasons all have German labels."""
    for measure in codes.MEASURES_SINCE:
        assert labels.measure(measure) != measure
    assert labels.measure(DECLINED) == "Verweisungen abgelehnt"
    assert (labels.dimension("decline_reason"), labels.dimension("wait_band")) == (
        "Ablehnungsgrund",
        "Wartezeit",
    )
    for dim, values in (("decline_reason", codes.DECLINE_REASON), ("wait_band", codes.WAIT_BAND)):
        assert {labels.code(dim, v) != v for v in values} == {True}
    assert set(code_labels.WAIT_BAND) == codes.WAIT_BAND
    assert set(code_labels.DECLINE_REASON) == codes.DECLINE_REASON
    assert labels.code("wait_band", "same_day") == "am selben Tag"
    assert labels.code("decline_reason", "no_capacity") == "keine Kapazität"


def test_the_fixture_reports_add_up() -> None:
    """The hand-written reports send every margin (the hub's own check)."""
    for cells in (OFFICE_A, OFFICE_B, OFFICE_C):
        assert margin_problems(_report(cells)) == ()


async def test_a_mixed_region_publishes_the_new_measures_of_the_upgraded_offices(
    stats_hub: StatsHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 2 is stored as such, a version-2 report with a new measure is refused;
    the published declines are the version-3 offices' alone, through the tables route."""
    a = await stats_hub.node("Caritas Köln-Mitte", "Caritas")
    b = await stats_hub.node("Caritas Köln-Porz", "Caritas")
    c = await stats_hub.node("Diakonie Köln-Nord", "Diakonie")
    now = stats_hub.clock.now()
    smuggled = _report({**OFFICE_C, (DECLINED, ()): 1, (DECLINED, (JC,)): 1}, version=2)
    inner = InnerMessage(os.urandom(16).hex(), c.node_id, HUB_ID, now, now + DAY, smuggled)
    with monkeypatch.context() as m:
        # seal() checks its own payload; this one is meant to be refused by the hub.
        m.setattr("protocol.envelope.decode_payload", lambda *_: None)
        body = seal(inner, c.keys, c.hub_keys, ephemeral_secret=os.urandom(32)).encode()
    resp = await HubClient(stats_hub.http, c, stats_hub.clock).signed("POST", "/v1/stats", body)
    assert (resp.status, problem_kind(await resp.json())) == (400, "invalid-code")
    for node, report in ((a, make_report(OFFICE_A)), (b, make_report(OFFICE_B))):
        assert (await stats_hub.submit(node, report)).status == 200
    assert (await stats_hub.submit(c, _report(OFFICE_C, version=2))).status == 200
    db = hub_db(stats_hub.settings)
    try:
        versions = {
            office: v
            for office, v in db.execute("SELECT office, dataset_version FROM stats_reports")
        }
        assert [r.revision for r in revisions(db, c.node_id, PERIOD)] == [1]
    finally:
        db.close()
    assert versions == {a.node_id: 3, b.node_id: 3, c.node_id: 2}

    stats_hub.clock.t = PUBLISHED
    token = stats_hub.token()

    async def table(query: str) -> Any:
        return await stats_hub.get_json(f"/coordinator/v1/tables?period={PERIOD}&{query}", token)

    def entry(offices: tuple[Cells, ...], ident: tuple[str, Any]) -> dict[str, Any]:
        value = published(offices, ident)
        few = value > 0 and 0 < sum(1 for o in offices if o.get(ident, 0) > 0) < 3
        return {"value": value, "few_offices": few}

    declined = await table(f"measure={DECLINED}&rows=target")
    assert declined["row_labels"] == sorted(codes.REFERRAL_TARGET)
    jobcenter = declined["row_labels"].index("jobcenter")
    upgraded = (OFFICE_A, OFFICE_B)
    assert declined["row_totals"][jobcenter] == entry(upgraded, (DECLINED, (JC,)))
    assert declined["total"] == entry(upgraded, (DECLINED, ()))
    assert declined["reporting_offices"] == 3
    sent = await table(f"measure={SENT}&rows=target")
    everyone = (OFFICE_A, OFFICE_B, OFFICE_C)
    assert sent["row_totals"][jobcenter] == entry(everyone, (SENT, (JC,)))
    waits = await table(f"measure={UNANSWERED}&rows=wait_band")
    assert waits["row_labels"] == sorted(codes.WAIT_BAND)
    resp = await stats_hub.http.request(
        "GET",
        f"/coordinator/v1/tables?period={PERIOD}&measure={ANSWERED}&rows=gender&cols=residence",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (resp.status, problem_kind(await resp.json())) == (400, "malformed")
