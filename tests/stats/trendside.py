"""Fourteen months, five quarters and a year of reports from three offices, submitted
each just after its period ended (so each counts in its publication), and the
numbers the "Verlauf" view must show for them, computed here from the reports."""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from hub.stats.periods import Period, parse_period
from hub.stats.view import KEY_MEASURES
from tests.hub.client import Node
from tests.stats.hubside import START, Cells, StatsHub, make_report, published

# 2025-10-01 06:00 UTC: the offices enroll before the first period they report.
EARLY = calendar.timegm((2025, 10, 1, 6, 0, 0))
OFFICES = {"A": "Caritas", "B": "Caritas", "C": "Diakonie"}
NAMES = {"A": "Caritas Köln-Mitte", "B": "Caritas Köln-Porz", "C": "Diakonie Köln-Nord"}
MONTHS = tuple(
    f"{y}-{m:02d}"
    for y, m in [(2025, 10), (2025, 11), (2025, 12)] + [(2026, m) for m in range(1, 12)]
)
QUARTERS = ("2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3")
YEARS = ("2025",)
# Nobody reported March 2026; only Caritas reported May 2026; only A and C the first quarter.
REPORTERS = {"2026-03": (), "2026-05": ("A", "B"), "2026-Q1": ("A", "C")}
MIN_OFFICES = 3  # the default policy's few-offices threshold


def cells(office: str, period: str) -> Cells:
    """Every key figure's total for one office and period, some of them 0 (not sent)."""
    rng = random.Random(f"{office}|{period}")
    out: Cells = {}
    for measure in KEY_MEASURES:
        n = (
            rng.randint(5, 80)
            if measure == "cases_active"
            else rng.choice((0, 1, 2, *range(3, 40)))
        )
        if n:
            out[(measure, ())] = n
    return out


def reporters(period: str) -> tuple[str, ...]:
    return REPORTERS.get(period, tuple(OFFICES))


def _day_after(period: Period) -> int:
    """10:00 UTC on the day after the period's end: over, and long before its cutoff."""
    d = period.end + timedelta(days=1)
    return calendar.timegm((d.year, d.month, d.day, 10, 0, 0))


async def submit_all(hub: StatsHub) -> dict[str, Node]:
    """Enroll the offices at EARLY, submit every period just after its end, end at START."""
    hub.clock.t = EARLY
    nodes = {k: await hub.node(NAMES[k], org) for k, org in OFFICES.items()}
    every = sorted(
        (parse_period(p) for p in MONTHS + QUARTERS + YEARS), key=lambda p: (p.end, p.kind)
    )
    for period in every:
        hub.clock.t = max(hub.clock.t, _day_after(period))
        for office in reporters(period.id):
            report = make_report(cells(office, period.id), period=period.id)
            resp = await hub.submit(nodes[office], report)
            assert resp.status == 200, await resp.text()
    hub.clock.t = START
    return nodes


def cutoff(period: Period) -> int:
    """00:00 Europe/Berlin after the deadline day (period end + 15 days)."""
    day = period.deadline() + timedelta(days=1)
    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo("Europe/Berlin")).timestamp())


@dataclass(frozen=True)
class Expected:
    state: str
    value: int | None = None
    few: bool = False


def expected(period: str, measure: str, now: int, org: str | None = None) -> Expected:
    """What the view must show: not published before the cutoff, "no_report" without a
    reporting office (of `org`), else the published number of the reporting offices."""
    p = parse_period(period)
    if now < cutoff(p):
        return Expected("provisional")
    offices = [o for o in reporters(period) if org is None or OFFICES[o] == org]
    if period not in MONTHS + QUARTERS + YEARS:
        offices = []
    if not offices:
        return Expected("no_report")
    reports = [cells(o, period) for o in offices]
    value = published(reports, (measure, ()))
    contributors = sum(1 for r in reports if (measure, ()) in r)
    return Expected("published", value, value > 0 and 0 < contributors < MIN_OFFICES)


def percent(current: int, base: int) -> Decimal | None:
    if base == 0:
        return None
    return (Decimal(100 * (current - base)) / Decimal(base)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )


def german_signed(n: int) -> str:
    if n == 0:
        return "±0"
    return ("+" if n > 0 else "\u2212") + f"{abs(n):,}".replace(",", ".")


def german_percent(p: Decimal) -> str:
    sign = "±" if p == 0 else "+" if p > 0 else "\u2212"
    digits = f"{abs(p):,.1f}".translate(str.maketrans(",.", ".,"))
    return sign + digits + "\u00a0%"
