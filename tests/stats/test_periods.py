"""Periods: parsing, coverage, end dates and on-time classification."""

from __future__ import annotations

from datetime import date

import pytest

from hub.stats.errors import PeriodError
from hub.stats.periods import Period, Timeliness, parse_period, previous_closed, timeliness


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("2026-11", Period(2026, "month", 11)),
        ("2026-01", Period(2026, "month", 1)),
        ("2026-Q4", Period(2026, "quarter", 4)),
        ("2026", Period(2026, "year", 0)),
    ],
)
def test_parse_round_trips(text: str, period: Period) -> None:
    """Each accepted form parses to its period and prints back unchanged."""
    assert parse_period(text) == period
    assert period.id == text


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-00", "2026-Q5", "2026-Q0", "26-11", "2026-11 ", "2026-q4", "", "1999"]
)
def test_parse_refuses_malformed(text: str) -> None:
    """Anything but YYYY, YYYY-MM, YYYY-Qn within the accepted years is refused."""
    with pytest.raises(PeriodError):
        parse_period(text)


def test_quarter_and_year_cover_their_months() -> None:
    """A quarter covers three months, a year twelve months and four quarters."""
    q4 = parse_period("2026-Q4")
    assert [m.id for m in q4.months()] == ["2026-10", "2026-11", "2026-12"]
    year = parse_period("2026")
    assert len(year.months()) == 12
    assert [q.id for q in year.quarters()] == ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    assert year.covers(q4)
    assert q4.covers(parse_period("2026-11"))
    assert not q4.covers(parse_period("2026-09"))
    assert not q4.covers(parse_period("2025-11"))


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-11", date(2026, 11, 1), date(2026, 11, 30)),
        ("2028-02", date(2028, 2, 1), date(2028, 2, 29)),
        ("2026-Q1", date(2026, 1, 1), date(2026, 3, 31)),
        ("2026-Q3", date(2026, 7, 1), date(2026, 9, 30)),
        ("2026", date(2026, 1, 1), date(2026, 12, 31)),
    ],
)
def test_start_and_end_dates(text: str, start: date, end: date) -> None:
    """Start and (inclusive) end dates follow the calendar, leap years included."""
    p = parse_period(text)
    assert (p.start, p.end) == (start, end)


def test_deadline_adds_grace_days_to_the_end() -> None:
    """The deadline is the period end plus the configured grace days."""
    p = parse_period("2026-12")
    assert p.deadline(15) == date(2027, 1, 15)
    assert p.deadline(0) == date(2026, 12, 31)
    with pytest.raises(PeriodError):
        p.deadline(-1)


def test_timeliness_of_every_case() -> None:
    """Open, pending, on time, late and missing are told apart by dates alone."""
    p = parse_period("2026-11")  # ends 30 Nov, deadline 10 Dec with 10 grace days
    assert timeliness(p, None, date(2026, 11, 30), 10) is Timeliness.OPEN
    assert timeliness(p, None, date(2026, 12, 10), 10) is Timeliness.PENDING
    assert timeliness(p, None, date(2026, 12, 11), 10) is Timeliness.MISSING
    assert timeliness(p, date(2026, 12, 10), date(2027, 1, 1), 10) is Timeliness.ON_TIME
    assert timeliness(p, date(2026, 12, 11), date(2027, 1, 1), 10) is Timeliness.LATE


def test_previous_closed_period() -> None:
    """The newest ended period is found across year boundaries."""
    assert previous_closed("month", date(2027, 1, 5)).id == "2026-12"
    assert previous_closed("quarter", date(2027, 2, 1)).id == "2026-Q4"
    assert previous_closed("quarter", date(2026, 11, 30)).id == "2026-Q3"
    assert previous_closed("year", date(2026, 6, 1)).id == "2025"


def test_periods_sort_by_year_first() -> None:
    """Periods of different years order by year."""
    assert parse_period("2025-Q4") < parse_period("2026-01")
