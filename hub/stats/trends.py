"""The figures of the "Verlauf" view over time: which periods, their published totals,
and the changes between them (docs/statistics.md, "Trends on the dashboard").

* `window(chosen)`: the 12 months and 8 quarters shown for a chosen period and
  the periods its changes compare it with. Pure.
* `read_totals(db, policy, periods, org, measures)`: the protected totals of
  `measures` of each already published period, in one job on the database
  thread, through `published.protected_tables` (the one read path of every
  coordinator route), so an organisation-limited coordinator gets its own
  organisation's numbers here as everywhere.
* `build(window, tables, measures)`: the series and changes from those tables.
  Pure: a period absent from `tables` is not published ("provisional"), one
  whose tables count no reporting office is "no_report". Neither is ever a 0.

Quarters are their own reports (docs/statistics.md, "No roll-up of months"):
nothing here adds months up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from hub.stats.aggregate import Scope, TableSpec
from hub.stats.disclosure import DisclosurePolicy, ProtectedTable
from hub.stats.errors import PeriodError
from hub.stats.periods import Period
from hub.stats.published import protected_tables
from hub.storage.engine import Db

MONTHS = 12
QUARTERS = 8

State = Literal["published", "no_report", "provisional"]
Against = Literal["previous", "year_before"]


def shift(period: Period, steps: int) -> Period | None:
    """The period `steps` periods of the same kind later (earlier if negative);
    None outside the years a period may lie in."""
    try:
        if period.kind == "month":
            n = period.year * 12 + period.index - 1 + steps
            return Period(n // 12, "month", n % 12 + 1)
        if period.kind == "quarter":
            n = period.year * 4 + period.index - 1 + steps
            return Period(n // 4, "quarter", n % 4 + 1)
        return Period(period.year + steps, "year", 0)
    except PeriodError:
        return None


def _ending(last: Period, count: int) -> tuple[Period, ...]:
    """`count` periods of `last`'s kind ending with `last`, oldest first (fewer near MIN_YEAR)."""
    found = (shift(last, -i) for i in range(count - 1, -1, -1))
    return tuple(p for p in found if p is not None)


@dataclass(frozen=True)
class Window:
    """The periods the view shows for `chosen`, each series oldest first."""

    chosen: Period
    months: tuple[Period, ...]
    quarters: tuple[Period, ...]
    # What the chosen period is compared with; None: no such period (before MIN_YEAR).
    comparisons: tuple[tuple[Against, Period | None], ...]

    @property
    def periods(self) -> tuple[Period, ...]:
        """Every period whose numbers the view needs, each once."""
        seen = [*self.months, *self.quarters, self.chosen]
        seen += [p for _, p in self.comparisons if p is not None]
        return tuple(dict.fromkeys(seen))


def window(chosen: Period) -> Window:
    """The 12 months and 8 quarters up to `chosen` and what its changes compare.

    A month: the 12 months ending with it, the 8 quarters ending with the quarter
    that contains it; compared with the month before and the same month a year
    before. A quarter: the 8 quarters ending with it, the 12 months ending with
    its last month; compared with the quarter before and the same quarter a year
    before. A year: the 12 months and 8 quarters ending with its last month and
    quarter; compared with the year before (which is both its previous period
    and the same period a year before, so it is named once).
    """
    last_month = chosen.months()[-1]
    last_quarter = Period(last_month.year, "quarter", (last_month.index - 1) // 3 + 1)
    comparisons: tuple[tuple[Against, Period | None], ...]
    if chosen.kind == "month":
        comparisons = (("previous", shift(chosen, -1)), ("year_before", shift(chosen, -12)))
    elif chosen.kind == "quarter":
        comparisons = (("previous", shift(chosen, -1)), ("year_before", shift(chosen, -4)))
    else:
        comparisons = (("year_before", shift(chosen, -1)),)
    return Window(
        chosen=chosen,
        months=_ending(last_month, MONTHS),
        quarters=_ending(last_quarter, QUARTERS),
        comparisons=comparisons,
    )


def read_totals(
    db: Db,
    policy: DisclosurePolicy,
    periods: Sequence[Period],
    org: str | None,
    measures: Sequence[str],
) -> dict[str, tuple[ProtectedTable, ...]]:
    """Period id -> the protected region totals of `measures` (in that order), as
    coordinator `org` (None: the region's) may see them. Runs on the database
    thread; every period must be published already (`view.publication_of`).

    Totals only: per period a few rows of the sums made at publication, whatever
    the number of offices (docs/statistics.md, "Reading a published period").
    """
    specs = tuple(TableSpec(m) for m in measures)
    return {p.id: protected_tables(db, policy, p, org, specs, Scope.region()) for p in periods}


@dataclass(frozen=True)
class Point:
    """One period of one figure: its published total, or why there is none."""

    period: Period
    state: State
    value: int | None = None  # only when published
    few: bool = False  # from fewer than min_offices offices


@dataclass(frozen=True)
class Change:
    """The chosen period's total against an earlier period's, both published numbers."""

    against: Against
    current: Point
    base: Point | None  # None: no such period

    @property
    def missing(self) -> Point | None:
        """The side that has no number (the chosen period first), if any."""
        for side in (self.current, self.base):
            if side is not None and side.state != "published":
                return side
        return None

    @property
    def difference(self) -> int | None:
        if self.base is None or self.current.value is None or self.base.value is None:
            return None
        return self.current.value - self.base.value

    @property
    def percent(self) -> Decimal | None:
        """The difference in percent of the earlier number, to one decimal (half up);
        None without a difference or when the earlier number is 0."""
        diff = self.difference
        if diff is None or self.base is None or not self.base.value:
            return None
        exact = Decimal(diff * 100) / Decimal(self.base.value)
        return exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Figure:
    """One key figure over time."""

    measure: str
    current: Point  # the chosen period
    months: tuple[Point, ...]
    quarters: tuple[Point, ...]
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class Trend:
    window: Window
    figures: tuple[Figure, ...]


def point(period: Period, tables: Mapping[str, Sequence[ProtectedTable]], i: int) -> Point:
    """The `i`-th figure of `period`: published, without any reporting office, or not
    published yet (absent from `tables`)."""
    found = tables.get(period.id)
    if found is None:
        return Point(period, "provisional")
    t = found[i]
    if t.reporting_offices == 0:
        return Point(period, "no_report")
    return Point(period, "published", t.total.value, t.total.few_offices)


def build(
    win: Window, tables: Mapping[str, Sequence[ProtectedTable]], measures: Sequence[str]
) -> Trend:
    """The figures of `measures` over `win` from the tables `read_totals` gave."""
    figures = []
    for i, measure in enumerate(measures):
        current = point(win.chosen, tables, i)
        changes = tuple(
            Change(against, current, None if p is None else point(p, tables, i))
            for against, p in win.comparisons
        )
        figures.append(
            Figure(
                measure=measure,
                current=current,
                months=tuple(point(p, tables, i) for p in win.months),
                quarters=tuple(point(p, tables, i) for p in win.quarters),
                changes=changes,
            )
        )
    return Trend(win, tuple(figures))
