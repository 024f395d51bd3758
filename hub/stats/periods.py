"""Reporting periods (`2026-11`, `2026-Q4`, `2026`) and when their reports are due.

Pure: `today` is always passed in. Dates are calendar dates in the hub's
reporting time zone; converting a receive timestamp into such a date is the
caller's job, so this module never touches a clock or a zone database.

The node has its own `Period` (node/stats/periods.py); how the two differ
(year range, fields, order) and where they agree (deadline) is written there.
"""

from __future__ import annotations

import calendar
import enum
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from hub.stats.errors import PeriodError
from protocol import codes

Kind = Literal["month", "quarter", "year"]
_PERIOD = re.compile(r"([0-9]{4})(?:-(0[1-9]|1[0-2])|-Q([1-4]))?")
# Earliest and latest years a period may lie in; wider ranges are typos, not data.
MIN_YEAR = codes.PERIOD_MIN_YEAR
MAX_YEAR = codes.PERIOD_MAX_YEAR
DEFAULT_GRACE_DAYS = 15


@dataclass(frozen=True, order=True)
class Period:
    """One reporting period. `index` is the month (1-12), the quarter (1-4) or 0 for a year."""

    year: int
    kind: Kind
    index: int

    def __post_init__(self) -> None:
        if not MIN_YEAR <= self.year <= MAX_YEAR:
            raise PeriodError(f"period year must be between {MIN_YEAR} and {MAX_YEAR}")
        limits = {"month": (1, 12), "quarter": (1, 4), "year": (0, 0)}
        if self.kind not in limits:
            raise PeriodError("period kind must be month, quarter or year")
        lo, hi = limits[self.kind]
        if not lo <= self.index <= hi:
            raise PeriodError(f"{self.kind} index must be between {lo} and {hi}")

    @property
    def id(self) -> str:
        if self.kind == "month":
            return f"{self.year:04d}-{self.index:02d}"
        if self.kind == "quarter":
            return f"{self.year:04d}-Q{self.index}"
        return f"{self.year:04d}"

    def __str__(self) -> str:
        return self.id

    def month_numbers(self) -> tuple[int, ...]:
        """Months of `year` this period covers, in order."""
        if self.kind == "month":
            return (self.index,)
        if self.kind == "quarter":
            first = 3 * (self.index - 1) + 1
            return (first, first + 1, first + 2)
        return tuple(range(1, 13))

    def months(self) -> tuple[Period, ...]:
        """The month periods this period covers (itself for a month)."""
        return tuple(Period(self.year, "month", m) for m in self.month_numbers())

    def quarters(self) -> tuple[Period, ...]:
        """The quarters this period covers (empty for a month)."""
        if self.kind == "month":
            return ()
        if self.kind == "quarter":
            return (self,)
        return tuple(Period(self.year, "quarter", q) for q in range(1, 5))

    def covers(self, other: Period) -> bool:
        """Whether every month of `other` lies inside this period."""
        return other.year == self.year and set(other.month_numbers()) <= set(self.month_numbers())

    @property
    def start(self) -> date:
        return date(self.year, self.month_numbers()[0], 1)

    @property
    def end(self) -> date:
        """The last day of the period (inclusive)."""
        last = self.month_numbers()[-1]
        return date(self.year, last, calendar.monthrange(self.year, last)[1])

    def is_over(self, today: date) -> bool:
        """Whether the period has ended, i.e. a complete report can exist."""
        return today > self.end

    def deadline(self, grace_days: int = DEFAULT_GRACE_DAYS) -> date:
        """The last day on which a report for this period still counts as on time."""
        if grace_days < 0:
            raise PeriodError("grace days must not be negative")
        return self.end + timedelta(days=grace_days)


def parse_period(text: str) -> Period:
    """Parse `YYYY-MM`, `YYYY-Qn` or `YYYY`; anything else raises `PeriodError`."""
    m = _PERIOD.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise PeriodError("period must look like 2026-11, 2026-Q4 or 2026")
    year = int(m.group(1))
    if m.group(2) is not None:
        return Period(year, "month", int(m.group(2)))
    if m.group(3) is not None:
        return Period(year, "quarter", int(m.group(3)))
    return Period(year, "year", 0)


def previous_closed(kind: Kind, today: date) -> Period:
    """The newest period of `kind` that has ended by `today` (what a node reports next)."""
    if kind == "month":
        first = today.replace(day=1) - timedelta(days=1)
        return Period(first.year, "month", first.month)
    if kind == "quarter":
        q = (today.month - 1) // 3 + 1
        return Period(today.year, "quarter", q - 1) if q > 1 else Period(today.year - 1, kind, 4)
    return Period(today.year - 1, "year", 0)


class Timeliness(enum.Enum):
    """Where an office stands with its report for one period."""

    OPEN = "open"  # the period has not ended; nothing is expected yet
    PENDING = "pending"  # ended, no report yet, deadline not passed
    ON_TIME = "on_time"
    LATE = "late"
    MISSING = "missing"  # deadline passed and no report


def timeliness(
    period: Period,
    first_received: date | None,
    today: date,
    grace_days: int = DEFAULT_GRACE_DAYS,
) -> Timeliness:
    """Classify one office's reporting for `period`.

    Timeliness is judged by the first revision received: a later correction
    (a new revision) does not make an on-time report late.
    """
    due = period.deadline(grace_days)
    if first_received is not None:
        return Timeliness.ON_TIME if first_received <= due else Timeliness.LATE
    if not period.is_over(today):
        return Timeliness.OPEN
    return Timeliness.PENDING if today <= due else Timeliness.MISSING
