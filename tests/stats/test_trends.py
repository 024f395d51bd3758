"""The "Verlauf" rules: which periods a chosen period shows, changes from published
numbers, German number texts, the chart geometry, and the one-job read of totals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hub.context import DB, SETTINGS
from hub.stats import publication, trends, view
from hub.stats.periods import Period, parse_period
from hub.stats.trend_charts import (
    change_text,
    nice_step,
    signed,
    signed_percent,
    trend_chart,
)
from hub.stats.trends import Change, Point
from tests.hub.conftest import FakeClock
from tests.stats.hubside import START, StatsHub
from tests.stats.trendside import EARLY, MONTHS, QUARTERS, expected, submit_all


@pytest.fixture
def hub_clock() -> FakeClock:
    return FakeClock(EARLY)


def ids(periods: tuple[Period, ...]) -> list[str]:
    return [p.id for p in periods]


def months(first: tuple[int, int], count: int) -> list[str]:
    y, m = first
    out = []
    for _ in range(count):
        out.append(f"{y}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def quarters(first: tuple[int, int], count: int) -> list[str]:
    y, q = first
    out = []
    for _ in range(count):
        out.append(f"{y}-Q{q}")
        y, q = (y + 1, 1) if q == 4 else (y, q + 1)
    return out


def test_a_month_shows_its_12_months_and_the_8_quarters_to_its_quarter() -> None:
    """A month: 12 months ending with it, 8 quarters ending with its quarter, compared with
    the month before and the same month a year before."""
    w = trends.window(parse_period("2026-11"))
    assert ids(w.months) == months((2025, 12), 12)
    assert ids(w.quarters) == quarters((2025, 1), 8)
    assert [(a, p.id if p else None) for a, p in w.comparisons] == [
        ("previous", "2026-10"),
        ("year_before", "2025-11"),
    ]
    assert set(ids(w.periods)) == set(months((2025, 11), 13)) | set(quarters((2025, 1), 8))
    assert len(w.periods) == 21


def test_a_quarter_shows_its_8_quarters_and_the_12_months_to_its_last_month() -> None:
    """A quarter: 8 quarters ending with it, 12 months ending with its last month, compared
    with the quarter before and the same quarter a year before."""
    w = trends.window(parse_period("2026-Q1"))
    assert ids(w.quarters) == quarters((2024, 2), 8)
    assert ids(w.months) == months((2025, 4), 12)
    assert [(a, p.id if p else None) for a, p in w.comparisons] == [
        ("previous", "2025-Q4"),
        ("year_before", "2025-Q1"),
    ]


def test_a_year_shows_its_months_and_quarters_and_compares_with_the_year_before() -> None:
    """A year: its 12 months, the 8 quarters up to its fourth, one comparison (the year
    before is both the previous period and the same period a year before)."""
    w = trends.window(parse_period("2025"))
    assert ids(w.months) == months((2025, 1), 12)
    assert ids(w.quarters) == quarters((2024, 1), 8)
    assert [(a, p.id if p else None) for a, p in w.comparisons] == [("year_before", "2024")]
    assert {"2025", "2024"} <= set(ids(w.periods))


def test_series_stop_at_the_earliest_year() -> None:
    """Near the first possible year the series are shorter and a missing base is None."""
    w = trends.window(parse_period("2000-02"))
    assert ids(w.months) == ["2000-01", "2000-02"]
    assert ids(w.quarters) == ["2000-Q1"]
    assert [(a, p.id if p else None) for a, p in w.comparisons] == [
        ("previous", "2000-01"),
        ("year_before", None),
    ]


def _p(state: str, value: int | None = None, period: str = "2026-10") -> Point:
    return Point(parse_period(period), state, value)  # type: ignore[arg-type]


def test_changes_are_differences_of_the_published_numbers() -> None:
    """Difference and percent of the earlier number, one decimal rounded half up."""
    up = Change("previous", _p("published", 401), _p("published", 400, "2026-09"))
    assert (up.difference, up.percent, up.missing) == (1, Decimal("0.3"), None)
    down = Change("year_before", _p("published", 97), _p("published", 125, "2025-10"))
    assert (down.difference, down.percent) == (-28, Decimal("-22.4"))
    text = change_text(down, "month")
    assert (text.name, text.base, text.difference, text.percent, text.note) == (
        "Vorjahresmonat",
        "Oktober 2025",
        "\u221228",
        "\u221222,4\u00a0%",
        "",
    )


def test_a_change_without_two_numbers_is_a_dash_with_the_reason() -> None:
    """A side not published or without reports gives "–" and names it; an earlier 0 gives
    the difference but no percent; a missing earlier period says so."""
    now = _p("provisional")
    c = change_text(Change("previous", now, _p("published", 5, "2026-09")), "month")
    assert (c.difference, c.percent, c.note) == ("–", "–", "Oktober 2026: vorläufig")
    c = change_text(
        Change("previous", _p("published", 5), _p("no_report", None, "2026-Q2")), "quarter"
    )
    assert (c.difference, c.percent, c.note, c.name) == (
        "–",
        "–",
        "2. Quartal 2026: keine Meldung",
        "Vorquartal",
    )
    c = change_text(Change("year_before", _p("published", 7), _p("published", 0, "2025")), "year")
    assert (c.difference, c.percent, c.note, c.name) == (
        "+7",
        "–",
        "Vergleichswert 0: keine Prozentangabe",
        "Vorjahr",
    )
    c = change_text(Change("year_before", _p("published", 7), None), "month")
    assert (c.difference, c.note) == ("–", "kein Vergleichszeitraum")


def test_german_number_texts() -> None:
    """Signs, thousands dots, decimal commas and a non-breaking space before %."""
    assert [signed(n) for n in (12, -3, 0, 1234, -12345)] == [
        "+12",
        "\u22123",
        "±0",
        "+1.234",
        "\u221212.345",
    ]
    assert signed_percent(Decimal("4.5")) == "+4,5\u00a0%"
    assert signed_percent(Decimal("-1234.5")) == "\u22121.234,5\u00a0%"
    assert signed_percent(Decimal("0.0")) == "±0,0\u00a0%"


def test_chart_draws_no_column_where_there_is_no_published_number() -> None:
    """Columns are scaled to round ticks; a 0 has no height but its label; provisional and
    no-report periods have no column height, only their words."""
    points = (
        _p("published", 130, "2026-01"),
        _p("published", 0, "2026-02"),
        _p("no_report", None, "2026-03"),
        _p("provisional", None, "2026-04"),
    )
    chart = trend_chart(points, "c", "Titel")
    a, zero, none, provisional = chart.columns
    assert [t.label for t in chart.ticks] == ["0", "50", "100", "150"]
    assert a.bar_height == pytest.approx(chart.plot_height * 130 / 150, abs=0.1)
    assert (zero.bar_height, zero.text) == (0, "0")
    assert (none.state, none.text, none.bar_height) == ("no_report", "keine Meldung", 0)
    assert (provisional.state, provisional.text) == ("provisional", "vorläufig")
    assert (a.axis, a.axis_year, zero.axis_year) == ("Jan", "2026", "")
    assert [nice_step(n) for n in (1, 3, 7, 40, 130, 999)] == [1, 1, 2, 10, 50, 250]


async def test_read_totals_gives_each_published_periods_protected_totals(
    stats_hub: StatsHub,
) -> None:
    """One database job returns, per published period, the region's (or an organisation's)
    protected totals, equal to the published numbers of the reports."""
    await submit_all(stats_hub)
    app = stats_hub.app
    win = trends.window(parse_period("2026-11"))
    held = [await app[DB].run(publication.due, p, app[SETTINGS], START) for p in win.periods]
    done = [p for p, h in zip(win.periods, held, strict=True) if h is not None]
    assert {"2026-11", "2026-Q4"}.isdisjoint(p.id for p in done)
    for org in (None, "Diakonie"):
        tables = await app[DB].run(
            trends.read_totals, app[view.DISCLOSURE], done, org, view.KEY_MEASURES
        )
        assert set(tables) == {p.id for p in done}
        built = trends.build(win, tables, view.KEY_MEASURES)
        seen = set()
        for figure in built.figures:
            for point in figure.months + figure.quarters:
                want = expected(point.period.id, figure.measure, START, org)
                assert (point.state, point.value, point.few) == (want.state, want.value, want.few)
                seen.add((point.state, point.few))
        # The fixture has every kind of period: numbers (some from few offices), none, not yet.
        assert seen >= {("published", False), ("published", True), ("no_report", False)}
        assert ("provisional", False) in seen
    assert len(MONTHS) >= 13
    assert len(QUARTERS) >= 5
