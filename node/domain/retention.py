"""When a closed case is due for erasure (docs/client-rights.md, "Retention").

A closed case is kept until the end of the year it was closed in, and then
`years` more years: closed on 2023-05-10 with `years = 3`, it is erased on
2027-01-01. Open cases are never due. Pure: dates in, dates out.
"""

from __future__ import annotations

import datetime as dt

# node.toml `[retention] years` when not set: the regular limitation period of
# §§ 195, 199 BGB (docs/client-rights.md, "Retention").
DEFAULT_YEARS = 3


def erase_on(closed: str, years: int) -> str:
    """The first day a case closed on `closed` (YYYY-MM-DD) may be erased."""
    year = dt.date.fromisoformat(closed).year
    return dt.date(year + years + 1, 1, 1).isoformat()


def is_due(closed: str | None, years: int, today: str) -> bool:
    """Whether a case closed on `closed` is due for erasure on `today`."""
    return closed is not None and erase_on(closed, years) <= today


def due_before(years: int, day: str) -> str:
    """The closure dates due for erasure on `day` are exactly those before this one.

    `erase_on(closed) <= day` holds when the closure year is at most
    `day.year - years - 1`, i.e. when `closed < f"{day.year - years}-01-01"`, so
    a store can select due cases with one comparison of ISO dates.
    """
    return dt.date(dt.date.fromisoformat(day).year - years, 1, 1).isoformat()
