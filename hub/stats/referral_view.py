"""The dashboard view "Verweisungen" (/dashboard/referrals): unmet need in a period.

Side by side per target service: referrals sent, accepted and declined, and
the share declined; declines by reason; how long answered referrals waited
for their answer and how long those still unanswered at the period's end had
waited; and the same per area.

Every number is an `Entry` of a `ProtectedTable` from `view.tables` (all
tables of the page in one read). The one figure made here, the decline share,
is computed from two published numbers, never from unprotected counts. Both
carry independent noise of up to `max_noise`, so a share of a few referrals
would say more about the noise than about the service: below
`SHARE_MIN_SENT` published referrals sent it is shown as "–".

The counts are not one cohort: a referral counts as sent in the period it was
sent, as accepted or declined in the period its answer arrived. The share
therefore compares a period's declines with its referrals sent, and may pass
100 % when earlier referrals are answered; the page says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web

from hub.context import SETTINGS
from hub.stats import aggregate, view
from hub.stats.aggregate import Scope, TableSpec
from hub.stats.charts import Chart, bar_chart
from hub.stats.disclosure import Entry, ProtectedTable
from hub.stats.frame import Frame, render
from hub.stats.table_view import code_namer, code_order, scope_name

SENT = "referrals_sent"
ACCEPTED = "referrals_accepted"
DECLINED = "referrals_declined"
REASON = "referrals_declined_reason"
ANSWERED = "referrals_answered"
UNANSWERED = "referrals_unanswered"
AREA = "area"

# A share of fewer published referrals than this is mostly noise (each count is off
# by up to max_noise, default 4): "–" instead.
SHARE_MIN_SENT = 10

_BY_TARGET = (SENT, ACCEPTED, DECLINED)
_BY_AREA = (SENT, ACCEPTED, DECLINED, ANSWERED, UNANSWERED)


def has_areas() -> bool:
    """Whether aggregation offers rows by area (docs/statistics.md)."""
    return AREA in aggregate.GROUP_DIMS


def specs() -> tuple[TableSpec, ...]:
    """Every table the page shows, read in one go."""
    out = [TableSpec(m, "target") for m in _BY_TARGET]
    out += [
        TableSpec(REASON, "decline_reason"),
        TableSpec(ANSWERED, "wait_band"),
        TableSpec(UNANSWERED, "wait_band"),
    ]
    if has_areas():
        out += [TableSpec(m, AREA) for m in _BY_AREA]
    return tuple(out)


def decline_share(sent: Entry, declined: Entry) -> str:
    """Declined of sent as a whole German percentage, "–" below SHARE_MIN_SENT sent.

    Whole percent: with noise on both numbers a decimal place would be false precision.
    """
    if sent.value < SHARE_MIN_SENT:
        return "–"
    return f"{round(100 * declined.value / sent.value)}\u00a0%"


@dataclass(frozen=True)
class Line:
    """A row of one of the page's tables: its code (None: totals), German name, numbers."""

    code: str | None
    name: str
    values: tuple[Entry, ...]
    share: str = ""  # the decline share, where the table has one


@dataclass(frozen=True)
class Block:
    """One table of the page with its German headings."""

    id: str
    heading: str  # of the first column
    columns: tuple[str, ...]  # of the number columns
    lines: tuple[Line, ...]
    totals: Line
    share: bool = False  # whether a decline share column follows the numbers


_ZERO = Entry(0)


def _rows(table: ProtectedTable) -> dict[str, Entry]:
    return dict(zip(table.row_labels, table.row_totals, strict=True))


def side_by_side(
    tables: Sequence[ProtectedTable], *, share: bool, names: Mapping[str, str] | None = None
) -> tuple[tuple[Line, ...], Line]:
    """The rows of 1-D tables of the same dimension next to each other, in reading order;
    a row one table lacks (an area without reports of a measure) is a published 0."""
    dim = tables[0].spec.rows
    name = code_namer(dim, names or {})
    found = [_rows(t) for t in tables]
    codes_seen: list[str] = []
    for t in tables:
        codes_seen += [c for c in t.row_labels if c not in codes_seen]
    ordered = [codes_seen[i] for i in code_order(dim, codes_seen, name)]

    def line(code: str | None, values: tuple[Entry, ...]) -> Line:
        text = decline_share(values[0], values[2]) if share else ""
        return Line(code, name(code) if code is not None else "Insgesamt", values, text)

    lines = tuple(line(c, tuple(f.get(c, _ZERO) for f in found)) for c in ordered)
    return lines, line(None, tuple(t.total for t in tables))


def _block(
    id: str,
    heading: str,
    columns: tuple[str, ...],
    tables: Sequence[ProtectedTable],
    share: bool = False,
) -> Block:
    lines, totals = side_by_side(tables, share=share)
    return Block(id, heading, columns, lines, totals, share)


@dataclass(frozen=True)
class Referrals:
    """What the page shows of a published period."""

    reporting_offices: int
    blocks: tuple[Block, ...]
    charts: tuple[Chart, ...]


def referrals(tables: Sequence[ProtectedTable]) -> Referrals:
    """The page's tables and charts from the published tables of `specs()`, in order."""
    by = {(t.spec.measure, t.spec.rows): t for t in tables}
    target = [by[(m, "target")] for m in _BY_TARGET]
    blocks = [
        _block(
            "by-target",
            "Verweisungsziel",
            ("gesendet", "angenommen", "abgelehnt"),
            target,
            share=True,
        ),
        _block("by-reason", "Ablehnungsgrund", ("Ablehnungen",), [by[(REASON, "decline_reason")]]),
        _block(
            "by-wait",
            "Wartezeit",
            ("beantwortet (Wartezeit bis zur Antwort)", "am Ende des Zeitraums noch ohne Antwort"),
            [by[(ANSWERED, "wait_band")], by[(UNANSWERED, "wait_band")]],
        ),
    ]
    if has_areas():
        blocks.append(
            _block(
                "by-area",
                "Gebiet",
                ("gesendet", "angenommen", "abgelehnt", "beantwortet", "ohne Antwort"),
                [by[(m, AREA)] for m in _BY_AREA],
                share=True,
            )
        )
    charts = (
        bar_chart(by[(DECLINED, "target")], "chart-declined", "Abgelehnte Verweisungen nach Ziel"),
        bar_chart(by[(REASON, "decline_reason")], "chart-reason", "Ablehnungen nach Grund"),
    )
    return Referrals(target[0].reporting_offices, tuple(blocks), charts)


async def page(request: web.Request, frame: Frame) -> str:
    """Verweisungen: sent, accepted and declined by target, declines by reason, waiting
    times, per area; the coordinator's region (or organisation)."""
    published = await view.publication_of(request, frame.period)
    shown = None
    if published is not None:
        found = await view.tables(request, frame.who, frame.period, specs(), Scope.region())
        shown = referrals(found)
    deadline = frame.period.deadline(request.app[SETTINGS].stats.grace_days)
    return render(
        "referrals.html",
        frame,
        shown=shown,
        scope_name=scope_name(Scope.region(), frame.who, frame.region, {}),
        areas=has_areas(),
        share_min=SHARE_MIN_SENT,
        policy=request.app[view.DISCLOSURE],
        deadline=deadline.strftime("%d.%m.%Y"),
    )
