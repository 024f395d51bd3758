"""The dashboard view "Tabellen" (/dashboard/table): any measure by one or two
dimensions as a German HTML table, with its chart and its downloads.

The choice travels in the query string (`measure`, `rows`, `cols`, `scope`),
the same names the coordinator API's `/tables` takes, so a download link is
this page's choice with a `format`. The form lists every dimension of every
measure (the page has no script to narrow the lists as the measure changes);
a combination that does not exist is answered with a German 400 page naming
what does not fit, never a crash. A scope outside the coordinator's offices is
the frame's German 404 page (`view.parse_scope`).

Every number is an `Entry` of the `ProtectedTable` that `view.tables` returns:
the page only labels, orders and lays out published numbers. Before a period
is published the page shows the form and the provisional note, no number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from aiohttp import web

from hub.context import SETTINGS
from hub.stats import aggregate, areas, labels, view
from hub.stats.access import Coordinator
from hub.stats.aggregate import OFFICE, ORGANISATION, Scope, TableSpec
from hub.stats.cells import dimension_allowed
from hub.stats.charts import Chart, bar_chart
from hub.stats.disclosure import Entry, ProtectedTable
from hub.stats.errors import TableSpecError
from hub.stats.frame import Frame, PageError, render
from hub.storage.sites import Site
from protocol import codes

PATH = "/dashboard/table"
API_TABLES = "/coordinator/v1/tables"
TOTAL = "Insgesamt"

# What the page shows when nothing is chosen yet: the overview's first chart.
DEFAULT_MEASURE = view.CHART_MEASURE
DEFAULT_ROWS = view.CHART_DIMENSIONS[1]

# A chart with a bar per office of a large region would be metres long; the
# table (and its downloads) hold every row anyway.
MAX_CHART_ROWS = 60

# The coordinator API's formats of `/tables` (hub/stats/api.py FORMATS; imported
# nowhere here because the dashboard must not reach into the API's handlers),
# with the German link text. tests/stats/test_table_view.py checks they exist.
DOWNLOADS: tuple[tuple[str, str], ...] = (
    ("csv-de", "CSV für Excel"),
    ("xlsx", "Excel (XLSX)"),
    ("csv", "CSV für Programme"),
    ("json", "JSON"),
)

# The pseudo-dimensions that group offices, with their German names; `area`
# counts only once aggregate.GROUP_DIMS has it.
_GROUP_NAMES = {ORGANISATION: "Träger", OFFICE: "Beratungsstelle", "area": "Gebiet"}

# The row of offices the directory gives no area (aggregate.NO_AREA, the empty key).

# Ordered code lists read in their own order (young to old, short to long), not
# alphabetically; `unknown` stays last.
_ORDINAL: Mapping[str, tuple[str, ...]] = {
    "age_band": ("under_27", "27_39", "40_59", "60_plus", "unknown"),
    "length_of_stay": ("under_1y", "1_to_3y", "over_3y", "unknown"),
    "wait_band": ("same_day", "1_3_days", "4_7_days", "8_14_days", "over_14_days"),
}


# Catch-all codes close a list rather than sort in among the others ("sonstige", "unbekannt").
_LAST = frozenset({"other", "unknown", "XX"})


def group_dims() -> tuple[str, ...]:
    """The office-grouping row choices that aggregation offers, in reading order."""
    return tuple(d for d in _GROUP_NAMES if d in aggregate.GROUP_DIMS)


def dim_name(dim: str) -> str:
    """German name of a dimension or pseudo-dimension."""
    return _GROUP_NAMES.get(dim) or labels.dimension(dim)


def _shown(raw: str) -> str:
    """A value the coordinator typed, short enough to quote in a message."""
    return raw if len(raw) <= 30 else raw[:30] + "…"


def _breakdown(measure: str) -> str | None:
    found = codes.MEASURES.get(measure)
    return found[0] if found is not None else None


@dataclass(frozen=True)
class Choice:
    """The table asked for: a valid `TableSpec` and the raw scope text."""

    spec: TableSpec
    scope: str | None


def parse_choice(query: Mapping[str, str]) -> Choice:
    """The table of this query, or a German `PageError` (400) naming what does not fit.

    Without any choice (the first visit) the default table. Empty form fields
    count as not chosen.
    """
    chosen = {k: query.get(k) or None for k in ("measure", "rows", "cols")}
    scope = query.get("scope") or None
    if not any(chosen.values()):
        return Choice(TableSpec(DEFAULT_MEASURE, DEFAULT_ROWS), scope)
    measure, rows, cols = chosen["measure"], chosen["rows"], chosen["cols"]
    if measure is None:
        raise PageError("Bitte eine Kennzahl wählen.")
    if measure not in codes.MEASURES:
        raise PageError(f"„{_shown(measure)}“ ist keine Kennzahl. Bitte eine aus der Liste wählen.")
    what = labels.measure(measure)
    if cols is not None and rows is None:
        raise PageError("Für Spalten bitte auch Zeilen wählen.")
    if rows is not None and rows == cols:
        raise PageError("Zeilen und Spalten müssen verschiedene Merkmale sein.")
    if rows is not None and rows not in group_dims() and not dimension_allowed(measure, rows):
        raise PageError(f"„{what}“ lässt sich nicht nach „{_shown(dim_name(rows))}“ aufteilen.")
    if cols is not None and not dimension_allowed(measure, cols):
        raise PageError(
            f"„{what}“ lässt sich in den Spalten nicht nach „{_shown(dim_name(cols))}“ "
            "aufteilen. Spalten sind Merkmale, keine Träger, Beratungsstellen oder Gebiete."
        )
    if rows is not None and cols is not None and _unreported_pair(measure, rows, cols):
        raise PageError(
            "Die Staatsangehörigkeit melden die Beratungsstellen nur allein oder zusammen "
            f"mit „{dim_name(_breakdown(measure) or '')}“, nicht gekreuzt mit anderen "
            "Merkmalen der Person. Bitte eine andere Kombination wählen."
            if _breakdown(measure)
            else "Die Staatsangehörigkeit melden die Beratungsstellen nur allein, nicht "
            "gekreuzt mit anderen Merkmalen der Person. Bitte eine andere Kombination wählen."
        )
    try:
        spec = TableSpec(measure, rows, cols)
    except TableSpecError:
        # Each dimension alone fits (checked above), so what TableSpec refuses is the
        # pair: nodes count this measure by one person's dimension at a time.
        if rows is not None and cols is not None:
            raise PageError(
                f"„{what}“ wird nicht nach „{dim_name(rows)}“ und „{dim_name(cols)}“ "
                "zugleich gezählt. Bitte nur eines davon wählen."
            ) from None
        raise PageError(
            "Diese Tabelle gibt es nicht. Bitte eine andere Kombination wählen."
        ) from None
    return Choice(spec, scope)


def _unreported_pair(measure: str, rows: str, cols: str) -> bool:
    """Whether nodes never send these two dimensions together: nationality with another
    crossing dimension (docs/statistics.md, "Which cells are sent"). Such a table would
    show only zeros, so it is not offered."""
    pair = {rows, cols}
    crossing = {d for d in pair if d in codes.CROSS_DIMENSIONS}
    return "nationality" in pair and len(crossing) == 2


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    selected: bool


@dataclass(frozen=True)
class OptionGroup:
    label: str
    options: tuple[Option, ...]


def _breakdown_users() -> dict[str, list[str]]:
    """Breakdown dimension -> the measures it belongs to."""
    out: dict[str, list[str]] = {}
    for measure, found in codes.MEASURES.items():
        if found is not None:
            out.setdefault(found[0], []).append(measure)
    return out


def _by_name(dims: Sequence[str]) -> list[str]:
    return sorted(dims, key=lambda d: dim_name(d).casefold())


def dimension_groups(chosen: str | None, with_groups: bool) -> tuple[OptionGroup, ...]:
    """The options of the rows (`with_groups`) or columns field."""

    def options(
        dims: Sequence[str], note: Callable[[str], str] = lambda d: ""
    ) -> tuple[Option, ...]:
        return tuple(Option(d, dim_name(d) + note(d), d == chosen) for d in dims)

    users = _breakdown_users()
    groups = []
    if with_groups:
        groups.append(OptionGroup("Beratungsstellen gruppiert", options(group_dims())))
    person = _by_name(list(codes.CROSS_DIMENSIONS))
    groups.append(OptionGroup("Merkmale der Person", options(person)))
    groups.append(
        OptionGroup(
            "Nur für einzelne Kennzahlen",
            options(
                _by_name(list(users)),
                lambda d: " (nur " + ", ".join(labels.measure(m) for m in users[d]) + ")",
            ),
        )
    )
    return tuple(groups)


def scope_value(scope: Scope) -> str:
    """The query text of a scope, as `view.parse_scope` reads it."""
    return "region" if scope.level == "region" else f"{scope.level}:{scope.key}"


def scope_options(
    who: Coordinator, region: str, sites: Sequence[Site], chosen: Scope
) -> tuple[Option, ...]:
    """The scopes this coordinator may choose: all their offices, an organisation (region
    coordinators only: for an organisation's coordinator it is the same as all), an area
    of their offices, an office."""
    picked = scope_value(chosen)
    everything = (
        f"{region}: alle Beratungsstellen"
        if who.org is None
        else f"Träger {who.org}: alle Beratungsstellen"
    )
    out = [Option("region", everything, picked == "region")]
    if who.org is None:
        for org in sorted({s.org for s in sites}, key=str.casefold):
            value = f"{ORGANISATION}:{org}"
            out.append(Option(value, f"Träger {org}", picked == value))
    for key in sorted(areas.directory_areas(sites), key=areas.sort_key):
        value = f"{aggregate.AREA}:{key}"
        out.append(Option(value, f"Gebiet {labels.area(key)}", picked == value))
    for s in sorted(sites, key=lambda s: (s.name.casefold(), s.node_id)):
        if s.status == "pending":  # never enrolled: it cannot have reported
            continue
        value = f"{OFFICE}:{s.node_id}"
        out.append(Option(value, f"Beratungsstelle {s.name}", picked == value))
    return tuple(out)


def scope_name(scope: Scope, who: Coordinator, region: str, names: Mapping[str, str]) -> str:
    if scope.level == "region":
        return region if who.org is None else f"Träger {who.org}"
    if scope.level == "organisation":
        return f"Träger {scope.key}"
    if scope.level == "area":
        return f"Gebiet {labels.area(scope.key)}"
    return f"Beratungsstelle {names.get(scope.key, scope.key)}"


def code_namer(dim: str | None, names: Mapping[str, str]) -> Callable[[str], str]:
    """German text of a row or column code: office rows by office name, organisations and
    areas by their key, codes by their label."""
    if dim == OFFICE:
        return lambda code: names.get(code, code)
    if dim == "area":
        return labels.area
    if dim in _GROUP_NAMES:
        return lambda code: code
    return lambda code: labels.code(dim or "", code)


def code_order(dim: str | None, found: Sequence[str], name: Callable[[str], str]) -> list[int]:
    """Positions of `found` in reading order: ordinal lists in their own order, all
    others by German name, catch-all codes last."""
    ordinal = _ORDINAL.get(dim or "")
    if ordinal is not None:
        rank = {c: i for i, c in enumerate(ordinal)}
        return sorted(range(len(found)), key=lambda i: (rank.get(found[i], len(rank)), found[i]))
    return sorted(
        range(len(found)), key=lambda i: (found[i] in _LAST, name(found[i]).casefold(), found[i])
    )


@dataclass(frozen=True)
class Line:
    """One table row: its code (None for the totals row), German name and numbers."""

    code: str | None
    name: str
    cells: tuple[Entry, ...]  # in the order of Grid.columns
    total: Entry


@dataclass(frozen=True)
class Grid:
    """A protected table laid out for the page, in German and in reading order."""

    row_title: str
    columns: tuple[tuple[str, str], ...]  # (code, German name)
    lines: tuple[Line, ...]
    totals: Line
    total_title: str  # heading of the last column


def grid(table: ProtectedTable, names: Mapping[str, str]) -> Grid:
    """`table`'s published numbers, labelled and ordered; nothing is computed."""
    spec = table.spec
    row_name = code_namer(spec.rows, names)
    col_name = code_namer(spec.cols, names)
    col_at = code_order(spec.cols, table.col_labels, col_name)
    row_at = code_order(spec.rows, table.row_labels, row_name)
    columns = tuple((table.col_labels[c], col_name(table.col_labels[c])) for c in col_at)
    lines = tuple(
        Line(
            code=table.row_labels[r],
            name=row_name(table.row_labels[r]),
            cells=tuple(table.cells[r][c] for c in col_at),
            total=table.row_totals[r],
        )
        for r in row_at
    )
    totals = Line(None, TOTAL, tuple(table.col_totals[c] for c in col_at), table.total)
    return Grid(
        row_title=dim_name(spec.rows) if spec.rows else "",
        columns=columns,
        lines=lines,
        totals=totals,
        total_title=TOTAL if spec.cols else labels.measure(spec.measure),
    )


def title(spec: TableSpec) -> str:
    parts = [labels.measure(spec.measure)]
    if spec.rows:
        parts.append("nach " + dim_name(spec.rows))
    if spec.cols:
        parts.append("und " + dim_name(spec.cols))
    return " ".join(parts)


def chart(table: ProtectedTable, layout: Grid) -> Chart | None:
    """Bars of the row totals (the values of a 1-D table), in the table's order and with
    its row names; None without rows or with too many for a chart."""
    spec = table.spec
    if spec.rows is None or not layout.lines or len(layout.lines) > MAX_CHART_ROWS:
        return None
    name = labels.measure(spec.measure) + " nach " + dim_name(spec.rows)
    if spec.cols:
        name += " (Insgesamt je Zeile)"
    drawn = bar_chart(table, "table-chart", name)
    # bar_chart orders by the code lists' labels; the table's order and names are the
    # reader's (office names, ordinal bands), so the bars move into the same slots.
    bars = {b.code: b for b in drawn.bars}
    slots = [(b.y, b.text_y) for b in drawn.bars]
    moved = tuple(
        replace(bars[line.code], name=line.name, y=y, text_y=text_y)
        for line, (y, text_y) in zip(layout.lines, slots, strict=True)
        if line.code is not None
    )
    return replace(drawn, bars=moved)


def download_links(frame: Frame, spec: TableSpec, scope: Scope) -> tuple[tuple[str, str], ...]:
    """(German text, URL) of this exact table in each format of the coordinator API."""
    query = {"period": frame.period.id, "measure": spec.measure}
    if spec.rows:
        query["rows"] = spec.rows
    if spec.cols:
        query["cols"] = spec.cols
    query["scope"] = scope_value(scope)
    return tuple(
        (text, API_TABLES + "?" + urlencode({**query, "format": fmt})) for fmt, text in DOWNLOADS
    )


async def page(request: web.Request, frame: Frame) -> str:
    """Tabellen: the chosen table of the period, its chart and downloads."""
    choice = parse_choice(request.query)
    spec = choice.spec
    sites = await view.sites_for(request, frame.who)
    scope = await areas.parse_scope(request, choice.scope, frame.who, sites, frame.period)
    names = {s.node_id: s.name for s in sites}
    published = await view.publication_of(request, frame.period)
    table = layout = drawn = None
    if published is not None:
        (table,) = await view.tables(request, frame.who, frame.period, (spec,), scope)
        layout = grid(table, names)
        drawn = chart(table, layout)
    deadline = frame.period.deadline(request.app[SETTINGS].stats.grace_days)
    return render(
        "table.html",
        frame,
        spec=spec,
        title=title(spec),
        scope_name=scope_name(scope, frame.who, frame.region, names),
        measures=tuple(Option(m, labels.measure(m), m == spec.measure) for m in codes.MEASURES),
        row_groups=dimension_groups(spec.rows, with_groups=True),
        col_groups=dimension_groups(spec.cols, with_groups=False),
        scopes=scope_options(frame.who, frame.region, sites, scope),
        table=table,
        grid=layout,
        chart=drawn,
        downloads=download_links(frame, spec, scope) if table is not None else (),
        policy=request.app[view.DISCLOSURE],
        deadline=deadline.strftime("%d.%m.%Y"),
        topic="topic" in (spec.rows, spec.cols),
        max_chart_rows=MAX_CHART_ROWS,
    )
