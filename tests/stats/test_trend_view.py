"""The "Verlauf" page and GET /coordinator/v1/trends: every number shown is the published
one of the reports, provisional periods and periods without reports carry no number,
an organisation's coordinator sees only its organisation, the charts are accessible."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest

from hub.stats.periods import parse_period
from hub.stats.view import KEY_MEASURES
from tests.hub.conftest import FakeClock
from tests.stats.hubside import StatsHub
from tests.stats.trendside import (
    EARLY,
    Expected,
    cutoff,
    expected,
    german_percent,
    german_signed,
    percent,
    submit_all,
)

pytestmark = pytest.mark.one_engine  # tests/conftest.py


MONTHS_TO_OCTOBER = [f"2025-{m}" for m in ("11", "12")] + [f"2026-{m:02d}" for m in range(1, 11)]
QUARTERS_TO_Q4 = [f"{y}-Q{q}" for y in (2025, 2026) for q in (1, 2, 3, 4)]


@pytest.fixture
def hub_clock() -> FakeClock:
    return FakeClock(EARLY)


async def _get(hub: StatsHub, path: str, token: str) -> str:
    resp = await hub.http.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200, await resp.text()
    return await resp.text()


def series(html: str, measure: str, kind: str) -> dict[str, tuple[str, str]]:
    """Period -> (state, text) from the data table of one chart."""
    table = re.search(
        rf'<table class="trend-data" id="trend-{measure}-{kind}-data">(.*?)</table>', html, re.S
    )
    assert table is not None
    rows = re.findall(
        r'<tr data-period="([^"]+)" data-state="([^"]+)">'
        r'<th scope="row">[^<]*</th><td>([^<]*)</td></tr>',
        table.group(1),
    )
    return {p: (s, t) for p, s, t in rows}


def shown(want: Expected) -> tuple[str, str]:
    """(state, text) the page must show for an expected point."""
    if want.state == "provisional":
        return want.state, "vorläufig"
    if want.state == "no_report":
        return want.state, "keine Meldung"
    assert want.value is not None
    return want.state, f"{want.value:,}".replace(",", ".") + ("¹" if want.few else "")


def change_cells(html: str, measure: str) -> dict[str, str]:
    """against -> the change cell's inner HTML in the changes table."""
    row = re.search(rf'<tr data-measure="{measure}">(.*?)</tr>', html, re.S)
    assert row is not None
    return dict(
        re.findall(r'<td class="trend-change" data-against="([^"]+)">(.*?)</td>', row.group(1))
    )


def expected_change(now: Expected, base: Expected, base_name: str) -> str:
    """The change cell the page must show, computed from the expected published numbers."""
    if now.value is None or base.value is None:
        missing = now if now.value is None else base
        name = "vorläufig" if missing.state == "provisional" else "keine Meldung"
        return f'<span class="diff">–</span><span class="trend-why">{base_name}: {name}</span>'
    diff = german_signed(now.value - base.value)
    pct = percent(now.value, base.value)
    if pct is None:
        return (
            f'<span class="diff">{diff}</span> <span class="pct">–</span>'
            '<span class="trend-why">Vergleichswert 0: keine Prozentangabe</span>'
        )
    return f'<span class="diff">{diff}</span> <span class="pct">{german_percent(pct)}</span>'


async def test_every_number_on_the_page_is_the_published_one(stats_hub: StatsHub) -> None:
    """For October 2026 every month, quarter and change shown equals what the reports give."""
    await submit_all(stats_hub)
    now = stats_hub.clock.now()
    html = await _get(stats_hub, "/dashboard/trends?period=2026-10", stats_hub.token())
    for m in KEY_MEASURES:
        months = series(html, m, "months")
        assert list(months) == MONTHS_TO_OCTOBER
        for period, got in months.items():
            assert got == shown(expected(period, m, now)), (m, period)
        quarters = series(html, m, "quarters")
        assert list(quarters) == QUARTERS_TO_Q4
        for period, got in quarters.items():
            assert got == shown(expected(period, m, now)), (m, period)
        current = expected("2026-10", m, now)
        now_cell = re.search(
            rf'<tr data-measure="{m}"><th scope="row">[^<]*</th>'
            r'<td class="trend-now" data-state="published">([^<]*)</td>',
            html,
        )
        assert now_cell is not None
        assert now_cell.group(1) == shown(current)[1]
        changes = change_cells(html, m)
        prev, year = expected("2026-09", m, now), expected("2025-10", m, now)
        assert changes["previous"] == expected_change(current, prev, "September 2026")
        assert changes["year_before"] == expected_change(current, year, "Oktober 2025")
    assert "ggü. Vormonat" in html
    assert "ggü. Vorjahresmonat" in html


async def test_a_period_before_its_deadline_is_vorlaeufig_until_published(
    stats_hub: StatsHub,
) -> None:
    """November 2026 before its deadline: marked vorläufig, no column, no number, no
    change; after the deadline the first read publishes it and its number appears."""
    await submit_all(stats_hub)
    token = stats_hub.token()
    html = await _get(stats_hub, "/dashboard/trends?period=2026-11", token)
    assert 'id="trend-provisional"' in html
    assert "15.12.2026" in html
    for m in KEY_MEASURES:
        assert series(html, m, "months")["2026-11"] == ("provisional", "vorläufig")
        assert series(html, m, "quarters")["2026-Q4"] == ("provisional", "vorläufig")
        column = re.search(
            rf'<svg[^>]*id="trend-{m}-months".*?<g class="trend-column trend-provisional" '
            r'data-period="2026-11" data-state="provisional">(.*?)</g>',
            html,
            re.S,
        )
        assert column is not None
        assert "trend-bar" not in column.group(1)
        assert "trend-value" not in column.group(1)
        assert 'class="trend-placeholder"' in column.group(1)
        assert ">vorläufig</text>" in column.group(1)
        why = '<span class="trend-why">November 2026: vorläufig</span>'
        for cell in change_cells(html, m).values():
            assert cell == '<span class="diff">–</span>' + why
    stats_hub.clock.t = cutoff(parse_period("2026-11"))
    now = stats_hub.clock.now()
    html = await _get(stats_hub, "/dashboard/trends?period=2026-11", token)
    assert 'id="trend-provisional"' not in html
    for m in KEY_MEASURES:
        want = expected("2026-11", m, now)
        assert want.state == "published"
        assert series(html, m, "months")["2026-11"] == shown(want)


async def test_a_period_without_reports_shows_keine_meldung_not_zero(stats_hub: StatsHub) -> None:
    """March 2026 (nobody reported) reads "keine Meldung" in chart and table, never 0."""
    await submit_all(stats_hub)
    html = await _get(stats_hub, "/dashboard/trends?period=2026-10", stats_hub.token())
    for m in KEY_MEASURES:
        assert series(html, m, "months")["2026-03"] == ("no_report", "keine Meldung")
        column = re.search(
            rf'<svg[^>]*id="trend-{m}-months".*?<g class="trend-column trend-no_report" '
            r'data-period="2026-03" data-state="no_report">(.*?)</g>',
            html,
            re.S,
        )
        assert column is not None
        assert "<rect" not in column.group(1)
        assert ">keine Meldung</text>" in column.group(1)
        assert ">0<" not in column.group(1)


async def test_organisation_coordinator_sees_its_own_numbers(stats_hub: StatsHub) -> None:
    """Diakonie's coordinator gets Diakonie's numbers only: May 2026 (only Caritas reported)
    is "keine Meldung" for it, and June's change against May is "–" with that reason."""
    await submit_all(stats_hub)
    now = stats_hub.clock.now()
    token = stats_hub.token("Diakonie")
    html = await _get(stats_hub, "/dashboard/trends?period=2026-06", token)
    assert "Caritas" not in html
    for m in KEY_MEASURES:
        for kind in ("months", "quarters"):
            for period, got in series(html, m, kind).items():
                assert got == shown(expected(period, m, now, "Diakonie")), (m, period)
        assert series(html, m, "months")["2026-05"] == ("no_report", "keine Meldung")
        changes = change_cells(html, m)
        assert changes["previous"] == (
            '<span class="diff">–</span><span class="trend-why">Mai 2026: keine Meldung</span>'
        )
        current = expected("2026-06", m, now, "Diakonie")
        year = expected("2025-06", m, now, "Diakonie")  # before the fixture: no report
        assert changes["year_before"] == expected_change(current, year, "Juni 2025")
    region = await _get(stats_hub, "/dashboard/trends?period=2026-06", stats_hub.token())
    assert series(region, "cases_active", "months")["2026-05"][0] == "published"


async def test_a_quarter_is_compared_with_its_own_reports(stats_hub: StatsHub) -> None:
    """For 2026-Q3: quarters up to it, months up to September, changes against 2026-Q2 and
    2025-Q3 from those quarters' own reports (not sums of months)."""
    await submit_all(stats_hub)
    now = stats_hub.clock.now()
    html = await _get(stats_hub, "/dashboard/trends?period=2026-Q3", stats_hub.token())
    assert "ggü. Vorquartal" in html
    assert "ggü. Vorjahresquartal" in html
    for m in KEY_MEASURES:
        assert list(series(html, m, "quarters")) == [
            f"{y}-Q{q}"
            for y, q in [
                (2024, 4),
                *((2025, q) for q in (1, 2, 3, 4)),
                (2026, 1),
                (2026, 2),
                (2026, 3),
            ]
        ]
        assert list(series(html, m, "months"))[-1] == "2026-09"
        current = expected("2026-Q3", m, now)
        changes = change_cells(html, m)
        assert changes["previous"] == expected_change(
            current, expected("2026-Q2", m, now), "2. Quartal 2026"
        )
        assert changes["year_before"] == expected_change(
            current, expected("2025-Q3", m, now), "3. Quartal 2025"
        )


async def test_every_chart_is_an_accessible_svg(stats_hub: StatsHub) -> None:
    """Each chart is an img with a <title> naming figure and series, and no script or style."""
    await submit_all(stats_hub)
    html = await _get(stats_hub, "/dashboard/trends?period=2026-10", stats_hub.token())
    svgs = re.findall(r"<svg [^>]*>.*?</svg>", html, re.S)
    assert len(svgs) == 2 * len(KEY_MEASURES)
    for svg in svgs:
        chart_id = re.search(r'id="([^"]+)"', svg)
        assert chart_id is not None
        cid = chart_id.group(1)
        assert f'role="img" aria-labelledby="{cid}-title"' in svg
        title = re.search(rf'<title id="{cid}-title">([^<]+)</title>', svg)
        assert title is not None
    assert (
        '<title id="trend-cases_active-months-title">Aktive Fälle je Monat, '
        "November 2025 bis Oktober 2026</title>" in html
    )
    assert (
        '<title id="trend-contacts-quarters-title">Kontakte je Quartal, '
        "1. Quartal 2025 bis 4. Quartal 2026</title>" in html
    )
    assert "<script" not in html
    assert "style=" not in html


def _points(
    doc: dict[str, Any], measure: str, kind: str
) -> dict[str, tuple[str, int | None, bool]]:
    figure = next(f for f in doc["figures"] if f["measure"] == measure)
    return {p["period"]: (p["state"], p["value"], p["few_offices"]) for p in figure[kind]}


async def test_api_json_holds_the_same_numbers(stats_hub: StatsHub) -> None:
    """GET /coordinator/v1/trends: every point and change equals the expected published ones;
    a point without a number has value null, never 0."""
    await submit_all(stats_hub)
    now = stats_hub.clock.now()
    for org in (None, "Caritas"):
        doc = await stats_hub.get_json(
            "/coordinator/v1/trends?period=2026-10", stats_hub.token(org)
        )
        assert (doc["period"], doc["months"], doc["quarters"]) == (
            "2026-10",
            MONTHS_TO_OCTOBER,
            QUARTERS_TO_Q4,
        )
        assert [f["measure"] for f in doc["figures"]] == list(KEY_MEASURES)
        for m in KEY_MEASURES:
            for kind in ("months", "quarters"):
                for period, got in _points(doc, m, kind).items():
                    want = expected(period, m, now, org)
                    assert got == (want.state, want.value, want.few), (org, m, period)
            figure = next(f for f in doc["figures"] if f["measure"] == m)
            current = expected("2026-10", m, now, org)
            for change, base in zip(figure["changes"], ("2026-09", "2025-10"), strict=True):
                was = expected(base, m, now, org)
                assert change["base"] == base
                assert current.value is not None
                assert was.value is not None
                assert change["difference"] == current.value - was.value
                pct = percent(current.value, was.value)
                assert change["percent"] == (None if pct is None else float(pct))
                assert change["missing"] is None


async def test_downloads_for_german_excel(stats_hub: StatsHub) -> None:
    """csv-de and xlsx hold the same numbers; no number means an empty cell with the reason."""
    await submit_all(stats_hub)
    now = stats_hub.clock.now()
    token = stats_hub.token()
    headers = {"Authorization": f"Bearer {token}"}
    resp = await stats_hub.http.request(
        "GET", "/coordinator/v1/trends?period=2026-11&format=csv-de", headers=headers
    )
    assert resp.status == 200
    assert resp.headers["Content-Disposition"] == 'attachment; filename="mbe-2026-11-verlauf.csv"'
    body = await resp.read()
    assert body.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    start = lines.index(["Monate bis November 2026"])
    header = lines[start + 1]
    col = header.index("Aktive Fälle")
    rows = {r[0]: r for r in lines[start + 2 : start + 14]}
    assert rows["November 2026"][col : col + 2] == ["", "vorläufig"]
    assert rows["März 2026"][col : col + 2] == ["", "keine Meldung"]
    oct_want = expected("2026-10", "cases_active", now)
    assert rows["Oktober 2026"][col] == str(oct_want.value)
    may = expected("2026-05", "cases_active", now)
    assert rows["Mai 2026"][col : col + 2] == [str(may.value), "¹" if may.few else ""]

    resp = await stats_hub.http.request(
        "GET", "/coordinator/v1/trends?period=2026-10&format=xlsx", headers=headers
    )
    assert resp.status == 200
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(await resp.read()))
    assert book.sheetnames == ["Veränderung", "Monate", "Quartale", "Erläuterungen"]
    sheet = book["Quartale"]
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    head = table[1]
    col = head.index("Kontakte")
    by_period = {r[0]: r for r in table[2:10]}
    q3 = expected("2026-Q3", "contacts", now)
    assert by_period["3. Quartal 2026"][col] == q3.value
    assert by_period["4. Quartal 2026"][col : col + 2] == [None, "vorläufig"]

    resp = await stats_hub.http.request(
        "GET", "/coordinator/v1/trends?period=2026-10&format=csv", headers=headers
    )
    assert resp.status == 400
