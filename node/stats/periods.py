"""Reporting periods: `2026-11` (month), `2026-Q4` (quarter), `2026` (year).

Pure calendar facts; "today" is always passed in. Both sides follow
protocol.codes.PERIOD, but the hub's `Period` (hub/stats/periods.py) is not
the same class, and not yet merged into `protocol/` (issue 12, item 6),
because the two differ on purpose or by history:

* Years: both refuse years outside protocol.codes.PERIOD_MIN_YEAR and
  PERIOD_MAX_YEAR (2000-2999) as typos, so `mbe-node stats submit 1999` is
  refused here, in one line, instead of being sealed and refused by the hub.
* Fields and order: the node's period is (start, end, kind, id) and sorts by
  its first day, which is what `periods_between` and the ledger need; the
  hub's is (year, kind, index) with `months()`, `quarters()`, `covers()` for
  aggregation, and sorts by year, then kind, then index.
* Due dates agree: the node's `due(today, grace)` is true exactly when the
  hub's `today > period.deadline(grace)`; a report is on time up to and
  including the deadline day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from node.stats.errors import BadPeriod
from protocol import codes


@dataclass(frozen=True, order=True)
class Period:
    start: dt.date
    end: dt.date  # last day, inclusive
    kind: str
    id: str

    def is_over(self, today: dt.date) -> bool:
        return today > self.end

    def due(self, today: dt.date, grace_days: int) -> bool:
        """Over, and `grace_days` full days have passed since its last day."""
        return today >= self.end + dt.timedelta(days=grace_days + 1)


def _month_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + 1, 1, 1) if month == 12 else dt.date(year, month + 1, 1)
    return nxt - dt.timedelta(days=1)


def month(year: int, m: int) -> Period:
    return Period(dt.date(year, m, 1), _month_end(year, m), "month", f"{year:04d}-{m:02d}")


def quarter(year: int, q: int) -> Period:
    first = 3 * (q - 1) + 1
    return Period(
        dt.date(year, first, 1), _month_end(year, first + 2), "quarter", f"{year:04d}-Q{q}"
    )


def year(y: int) -> Period:
    return Period(dt.date(y, 1, 1), dt.date(y, 12, 31), "year", f"{y:04d}")


def parse_period(text: str) -> Period:
    """The period named by `text`, or BadPeriod (one line, for API and CLI)."""
    if not isinstance(text, str) or not codes.PERIOD.fullmatch(text):
        raise BadPeriod("period must look like 2026-11, 2026-Q4 or 2026")
    y = int(text[:4])
    if not codes.PERIOD_MIN_YEAR <= y <= codes.PERIOD_MAX_YEAR:
        raise BadPeriod(
            f"period year must be between {codes.PERIOD_MIN_YEAR} and {codes.PERIOD_MAX_YEAR}"
        )
    if len(text) == 4:
        return year(y)
    if text[5] == "Q":
        return quarter(y, int(text[6]))
    return month(y, int(text[5:7]))


def _month_index(d: dt.date) -> int:
    return d.year * 12 + d.month - 1


def periods_between(first: dt.date, today: dt.date, kinds: tuple[str, ...]) -> list[Period]:
    """Every period of the given kinds that starts on or after `first`'s month and ended
    before `today`, oldest first (months before quarters before years on equal ends)."""
    out: list[Period] = []
    lo, hi = _month_index(first), _month_index(today)
    for i in range(lo, hi + 1):
        y, m = divmod(i, 12)
        m += 1
        candidates = []
        if "month" in kinds:
            candidates.append(month(y, m))
        if "quarter" in kinds and m % 3 == 1:
            candidates.append(quarter(y, m // 3 + 1))
        if "year" in kinds and m == 1:
            candidates.append(year(y))
        out.extend(p for p in candidates if p.is_over(today))
    order = {"month": 0, "quarter": 1, "year": 2}
    return sorted(out, key=lambda p: (p.end, order[p.kind]))
