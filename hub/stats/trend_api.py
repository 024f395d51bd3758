"""GET /coordinator/v1/trends?period=P[&format=json|csv-de|xlsx]: the figures of the
dashboard's "Verlauf" view (hub/stats/trend_view.py) for programs and spreadsheets.

The same `trend_view.load` as the page, so the same published numbers: each key
figure's total for the 12 months and 8 quarters up to P and P's changes
(docs/statistics.md, "Trends on the dashboard"; docs/hub-api.md, "Coordinator
API: trends"). A period without a number is never a 0: JSON says `state`
`provisional` or `no_report` with `value` null, the spreadsheets leave the
number cell empty and say why in its "Hinweis" column. Unlike `tables`, a
chosen period that is not published yet is no error: the view shows it as
provisional, and so does this route.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from hub.context import DEPS, SETTINGS
from hub.errors import Problem
from hub.stats import labels, trends, view
from hub.stats.access import coordinator
from hub.stats.api import PREFIX, office_download
from hub.stats.charts import FEW_MARK
from hub.stats.exports import NOTE, Explanation, Sheet, Value
from hub.stats.trend_charts import AGAINST_TEXT, STATE_TEXT, change_text
from hub.stats.trend_view import load
from protocol.hub_api import ProblemKind

FORMATS = ("json", "csv-de", "xlsx")


def point_obj(p: trends.Point) -> dict[str, Any]:
    return {"period": p.period.id, "state": p.state, "value": p.value, "few_offices": p.few}


def change_obj(c: trends.Change) -> dict[str, Any]:
    missing = c.missing
    return {
        "against": c.against,
        "base": None if c.base is None else c.base.period.id,
        "difference": c.difference,
        "percent": None if c.percent is None else float(c.percent),
        "missing": None if missing is None else point_obj(missing),
    }


def trend_obj(trend: trends.Trend) -> dict[str, Any]:
    win = trend.window
    return {
        "period": win.chosen.id,
        "months": [p.id for p in win.months],
        "quarters": [p.id for p in win.quarters],
        "figures": [
            {
                "measure": f.measure,
                "current": point_obj(f.current),
                "months": [point_obj(p) for p in f.months],
                "quarters": [point_obj(p) for p in f.quarters],
                "changes": [change_obj(c) for c in f.changes],
            }
            for f in trend.figures
        ],
    }


def _cell(p: trends.Point) -> tuple[Value, Value]:
    """A number cell and its "Hinweis": the footnote mark, or why there is no number."""
    if p.value is None:
        return None, STATE_TEXT[p.state]
    return p.value, FEW_MARK if p.few else None


def _notes(min_offices: int) -> tuple[str, ...]:
    return (
        f"{FEW_MARK} aus weniger als {min_offices} Beratungsstellen.",
        "vorläufig: Die Meldefrist ist noch nicht abgelaufen; die Zahlen sind noch nicht "
        "veröffentlicht (kein Wert, auch keine 0).",
        "keine Meldung: Für diesen Zeitraum hat keine Beratungsstelle gemeldet.",
    )


def series_sheet(trend: trends.Trend, kind: str, min_offices: int) -> Sheet:
    """One line per period, a (number, Hinweis) column pair per key figure."""
    names = [labels.measure(f.measure) for f in trend.figures]
    header = ("Zeitraum", *(x for n in names for x in (n, NOTE)))
    periods = trend.window.months if kind == "month" else trend.window.quarters
    rows = []
    for i, period in enumerate(periods):
        points = [(f.months if kind == "month" else f.quarters)[i] for f in trend.figures]
        rows.append((labels.period(period.id), *(x for p in points for x in _cell(p))))
    title = "Monate" if kind == "month" else "Quartale"
    notes = _notes(min_offices)
    if kind == "quarter":
        notes += ("Quartale sind eigene Meldungen, keine Summen der Monate.",)
    chosen = labels.period(trend.window.chosen.id)
    return Sheet(f"{title} bis {chosen}", header, tuple(rows), notes, name=title)


def _percent_cell(text: str) -> str:
    """`66,0 %`, `−4,9 %`, `0,0 %`: text that starts with `+` would be defused with a
    leading `'` (a spreadsheet reads it as a formula), so a rise carries no sign; a
    fall keeps the typographic minus, which no spreadsheet runs."""
    return text[1:] if text[0] in "+±" else text


def changes_sheet(trend: trends.Trend) -> Sheet:
    """One line per key figure: the chosen period's number and its changes."""
    chosen = trend.window.chosen
    header: list[str] = ["Kennzahl", labels.period(chosen.id), NOTE]
    for against, base in trend.window.comparisons:
        name = AGAINST_TEXT[(chosen.kind, against)]
        where = f" ({labels.period(base.id)})" if base is not None else ""
        header += [f"ggü. {name}{where}", "in %", NOTE]
    rows = []
    for f in trend.figures:
        row: list[Value] = [labels.measure(f.measure), *_cell(f.current)]
        for c in f.changes:
            text = change_text(c, chosen.kind)
            percent = _percent_cell(text.percent) if c.percent is not None else None
            row += [c.difference, percent, text.note or None]
        rows.append(tuple(row))
    notes = (
        "Veränderungen aus den veröffentlichten Zahlen; Prozent vom Vergleichswert, "
        "auf eine Nachkommastelle gerundet. Fehlt eine der beiden Zahlen, bleibt die "
        "Zelle leer; der Hinweis sagt, warum.",
    )
    return Sheet(
        f"Veränderung, {labels.period(chosen.id)}", tuple(header), tuple(rows), notes, "Veränderung"
    )


async def get_trends(request: web.Request) -> web.Response:
    who = await coordinator(request)
    fmt = request.query.get("format", "json")
    if fmt not in FORMATS:
        raise Problem(ProblemKind.MALFORMED, 400, f"format must be one of {', '.join(FORMATS)}")
    period = view.parse_period_param(request.query.get("period"))
    trend = await load(request, who, period)
    if fmt == "json":
        return web.json_response(trend_obj(trend))
    settings = request.app[SETTINGS]
    zone = ZoneInfo(settings.stats.timezone)
    explanation = Explanation(
        region=settings.region,
        data_date=datetime.fromtimestamp(request.app[DEPS].clock.now(), zone).date(),
        data_note="Abruf; jeder Zeitraum mit den Zahlen seiner Veröffentlichung",
        period=period.id,
        org=who.org,
        policy=request.app[view.DISCLOSURE],
        notes=(
            (
                "Verlauf",
                "Die letzten 12 Monate und 8 Quartale bis zum gewählten Zeitraum; "
                "Quartale sind eigene Meldungen, keine Summen der Monate.",
            ),
        ),
    )
    least = request.app[view.DISCLOSURE].min_offices
    sheets = [
        changes_sheet(trend),
        series_sheet(trend, "month", least),
        series_sheet(trend, "quarter", least),
    ]
    return await office_download(fmt, sheets, explanation, f"mbe-{period.id}-verlauf")


def add_trend_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/trends", get_trends)
