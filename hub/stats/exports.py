"""Downloads for German office software: CSV for German Excel and XLSX workbooks.

The machine formats (JSON, and the long CSV of `hub.stats.render`) are for
programs; these are for people who open the file in Excel or LibreOffice
Calc with German settings. German labels everywhere, numbers as numbers.

Reusing it for another page (trends, areas, ...): build one `Sheet` per table,
then call `german_csv(sheets, explanation)` or `xlsx(sheets, explanation)`.

* `Sheet(title, header, rows, notes, name)`: a title ("Neue Fälle, November
  2026"), German column headers, rows of `str | int | date | None` (None is an
  empty cell), notes shown below the rows (footnotes), and optionally the tab
  name (default: from the title). Keep numbers `int`, never formatted text, so
  the spreadsheet can sum and sort them; put a footnote mark in a column of
  its own (`mark(entry)` next to `entry.value`), never into the number.
* `Explanation(region, data_date, ...)`: what the "Erläuterungen" (the sheet
  of an XLSX, the closing lines of a CSV) say: region, organisation, period,
  date of the data, and, when `policy` is given, what the perturbation means
  for the reader (at most `max_noise` off, no 1..js, equal numbers are equal
  everywhere, sums of parts may differ from totals, the footnote mark), and
  always the confidentiality note. `notes` adds lines of the caller's own.
* `table_sheet(table)`: one `ProtectedTable` (0-D, 1-D or 2-D); totals are
  labelled "Insgesamt", each number is followed by its "Hinweis" column that
  holds `FEW_MARK` when the number comes from fewer than `min_offices` offices.
* `completeness_sheet(rows)`, `offices_sheet(sites)`: the Meldestand and the
  office directory.

German CSV: UTF-8 with BOM (without it Excel reads UTF-8 as Windows-1252),
`;` between fields (the list separator of German Excel), CRLF line ends,
dates as `TT.MM.JJJJ`, integers without thousands separators. No `sep=;` line:
Excel then ignores the BOM and garbles the umlauts. A file of one table
starts with its header line (so `header=present` holds and Excel's filter
works); a file of several tables gives each a title line and separates them
by an empty line. The explanation follows the tables, after an empty line.

Formula injection: office and organisation names are typed by hub operators,
and a cell starting with `=`, `+`, `-` or `@` (or a tab or carriage return)
would run as a formula when the file is opened. In the CSV such text gets a
leading `'` (as `hub.stats.render.write_csv` does), which Excel and Calc
show as text. In the XLSX text is always a string cell (openpyxl would
take `=...` for a formula unless told), which no spreadsheet evaluates, so
the text stays as typed.

openpyxl is imported inside `xlsx()` only: the hub must not load it at
start-up (tests/test_memory.py); a process pays for it when the first XLSX
is asked for.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from hub.stats import labels
from hub.stats.charts import FEW_MARK
from hub.stats.disclosure import DisclosurePolicy, Entry, ProtectedTable
from hub.storage.sites import Site

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell
    from openpyxl.workbook.workbook import Workbook

    from hub.stats.view import CompletenessRow

Value = str | int | date | None

TOTAL = "Insgesamt"
NOTE = "Hinweis"
EXPLANATION_TITLE = "Erläuterungen"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Text a spreadsheet would run as a formula starts with one of these.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Sheet:
    """One table of a download: a sheet of an XLSX, a section of a CSV."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Value, ...], ...]
    notes: tuple[str, ...] = ()
    name: str = ""  # the XLSX tab; empty: made from the title


@dataclass(frozen=True)
class Explanation:
    """What a reader needs to read the numbers of a download (German text)."""

    region: str
    data_date: date
    data_note: str = ""  # what the date is, e.g. "Veröffentlichung der Zahlen"
    period: str | None = None
    org: str | None = None  # an organisation-limited coordinator's organisation
    policy: DisclosurePolicy | None = None  # None: the file holds no statistics
    notes: tuple[tuple[str, str], ...] = ()

    def lines(self) -> tuple[tuple[str, str], ...]:
        """(topic, text) pairs, in reading order."""
        when = _date(self.data_date) + (f" ({self.data_note})" if self.data_note else "")
        out = [
            ("Region", self.region),
            ("Träger", self.org if self.org else "alle Träger"),
        ]
        if self.period is not None:
            out.append(("Zeitraum", labels.period(self.period)))
        out.append(("Datenstand", when))
        out.extend(self.notes)
        confidential = "Vertraulich: nur für die Koordination."
        if self.policy is not None:
            p = self.policy.params
            out += [
                (
                    "Veränderte Zahlen",
                    "Zum Schutz der Vertraulichkeit sind alle Zahlen leicht verändert "
                    "(Überlagerung wie beim Zensus 2022): Jede Zahl weicht um höchstens "
                    f"{p.max_noise} vom wahren Wert ab, Werte von 1 bis {p.js} werden nie "
                    "gezeigt, und eine 0 kann auch für sehr wenige Fälle stehen.",
                ),
                (
                    "Gleiche Zahlen",
                    "Dieselbe Zahl ist in jeder Tabelle und jeder Datei gleich.",
                ),
                (
                    "Summen",
                    "Jede Zahl ist für sich verändert: Die Summe von Teilwerten kann daher "
                    f"von der Gesamtzahl („{TOTAL}“) abweichen. Für Gesamtzahlen bitte "
                    f"„{TOTAL}“ verwenden, nicht selbst addieren.",
                ),
                (
                    f"Fußnote {FEW_MARK}",
                    f"Zahl aus weniger als {self.policy.min_offices} Beratungsstellen "
                    f"(Spalte „{NOTE}“ neben der Zahl).",
                ),
            ]
            confidential += " Alle Zahlen sind zum Schutz der Vertraulichkeit leicht verändert."
        out.append(("Vertraulichkeit", confidential))
        return tuple(out)


def mark(entry: Entry) -> str | None:
    """The footnote mark of a published number, None (an empty cell) for none."""
    return FEW_MARK if entry.few_offices else None


def _date(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def _scope_text(t: ProtectedTable, office_names: Mapping[str, str]) -> str:
    level, key = t.scope.level, t.scope.key
    if level == "organisation":
        return f"{labels.dimension('organisation')} {key}"
    if level == "office":
        return f"{labels.dimension('office')} {office_names.get(key, key)}"
    if level == "area":
        return f"Gebiet {labels.area(key)}"
    return ""


def _row_names(dim: str, values: Sequence[str], office_names: Mapping[str, str]) -> list[str]:
    """German row labels; offices by name (with their id when two share a name)."""
    if dim == "organisation":
        return list(values)
    if dim != "office":
        return [labels.code(dim, v) for v in values]
    names = [office_names.get(v, v) for v in values]
    return [n if names.count(n) == 1 else f"{n} ({v})" for n, v in zip(names, values, strict=True)]


def table_sheet(t: ProtectedTable, office_names: Mapping[str, str] | None = None) -> Sheet:
    """One protected table in German: labels, "Insgesamt", a "Hinweis" column per number.

    0-D: one line (measure, number). 1-D: a line per row value and "Insgesamt".
    2-D: a column per column value and "Insgesamt", a line per row value and
    "Insgesamt". `office_names` (office id -> name) names the offices of an
    `office` breakdown or scope; without it they show as ids.
    """
    names = office_names or {}
    spec = t.spec
    measure = labels.measure(spec.measure)
    dims = [labels.dimension(d) for d in (spec.rows, spec.cols) if d is not None]
    topic = " nach " + " und ".join(dims) if dims else ""
    where = ", ".join(x for x in (labels.period(t.period), _scope_text(t, names)) if x)
    title = f"{measure}{topic}, {where}"
    rows: list[tuple[Value, ...]]
    if spec.rows is None:
        header: tuple[str, ...] = ("Kennzahl", "Anzahl", NOTE)
        rows = [(measure, t.total.value, mark(t.total))]
    elif spec.cols is None:
        header = (labels.dimension(spec.rows), "Anzahl", NOTE)
        row_names = _row_names(spec.rows, t.row_labels, names)
        rows = [(n, e.value, mark(e)) for n, e in zip(row_names, t.row_totals, strict=True)]
        rows.append((TOTAL, t.total.value, mark(t.total)))
    else:
        columns = [labels.code(spec.cols, c) for c in t.col_labels] + [TOTAL]
        header = (labels.dimension(spec.rows), *(x for c in columns for x in (c, NOTE)))

        def line(label: str, entries: Iterable[Entry]) -> tuple[Value, ...]:
            return (label, *(x for e in entries for x in (e.value, mark(e))))

        row_names = _row_names(spec.rows, t.row_labels, names)
        rows = [
            line(n, (*cells, total))
            for n, cells, total in zip(row_names, t.cells, t.row_totals, strict=True)
        ]
        rows.append(line(TOTAL, (*t.col_totals, t.total)))
    notes = [
        f"{FEW_MARK} aus weniger als {t.policy.min_offices} Beratungsstellen.",
        f"Meldungen von {t.reporting_offices} "
        f"{'Beratungsstelle' if t.reporting_offices == 1 else 'Beratungsstellen'}. "
        "Alle Zahlen sind leicht "
        f"verändert; die Summe von Teilwerten kann von „{TOTAL}“ abweichen.",
    ]
    if "topic" in (spec.rows, spec.cols):
        notes.append(
            "Ein Fall kann mehrere Themen haben; die Werte nach Thema ergeben zusammen "
            "daher mehr als die Gesamtzahl."
        )
    return Sheet(title, header, tuple(rows), tuple(notes), name=f"{measure}{topic}")


def completeness_sheet(rows: Iterable[CompletenessRow], period: str) -> Sheet:
    """The Meldestand of `period`: one line per office expected to report."""
    return Sheet(
        title=f"Meldestand, {labels.period(period)}",
        header=("Beratungsstelle", "Träger", "Status", "Erste Meldung", "Revision", "Kennung"),
        rows=tuple(
            (
                r.name,
                r.org,
                labels.TIMELINESS.get(r.status.value, r.status.value),
                r.first_received,
                r.revision,
                r.office,
            )
            for r in rows
        ),
        notes=(
            "Status „gemeldet“: die erste Meldung kam bis zur Frist; „verspätet“: danach; "
            "„ausstehend“: noch keine Meldung, die Frist läuft noch; „fehlt“: keine Meldung "
            "bis zur Frist; „Zeitraum läuft“: der Zeitraum ist noch nicht zu Ende.",
            "Revision: die neueste eingegangene Fassung der Meldung.",
        ),
        name="Meldestand",
    )


def offices_sheet(sites: Iterable[Site]) -> Sheet:
    """The office directory: name, organisation, area, services, languages, status."""
    return Sheet(
        title="Beratungsstellen",
        header=("Beratungsstelle", "Träger", "Gebiet", "Angebote", "Sprachen", "Status", "Kennung"),
        rows=tuple(
            (
                s.name,
                s.org,
                s.area or None,
                ", ".join(labels.code("target", v) for v in s.services) or None,
                # No German names of languages exist in the code lists yet: ISO codes.
                ", ".join(s.languages) or None,
                labels.SITE_STATUS.get(s.status, s.status),
                s.node_id,
            )
            for s in sites
        ),
        notes=("Sprachen als ISO-639-Kürzel (z. B. de, ar, uk).",),
    )


def explanation_sheet(explanation: Explanation) -> Sheet:
    return Sheet(
        title=EXPLANATION_TITLE,
        header=("Thema", "Erläuterung"),
        rows=explanation.lines(),
        name=EXPLANATION_TITLE,
    )


# --- CSV for German Excel ---------------------------------------------------------


def defuse(value: str) -> str:
    """Text that a spreadsheet would run as a formula, made plain text (leading `'`)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_cell(value: Value) -> str | int:
    if value is None:
        return ""
    if isinstance(value, date):
        return _date(value)
    if isinstance(value, int):
        return value
    return defuse(value)


def german_csv(sheets: Sequence[Sheet], explanation: Explanation | None = None) -> bytes:
    """The sheets as one CSV for German Excel (module docstring: layout, encoding)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    several = len(sheets) > 1
    for i, sheet in enumerate(sheets):
        if i:
            writer.writerow([])
        if several:
            writer.writerow([defuse(sheet.title)])
        writer.writerow([defuse(h) for h in sheet.header])
        writer.writerows([_csv_cell(v) for v in row] for row in sheet.rows)
        notes = sheet.notes if several else (sheet.title, *sheet.notes)
        if notes:
            writer.writerow([])
            writer.writerows([defuse(n)] for n in notes)
    if explanation is not None:
        writer.writerow([])
        writer.writerow([EXPLANATION_TITLE])
        writer.writerows([defuse(k), defuse(v)] for k, v in explanation.lines())
    return out.getvalue().encode("utf-8-sig")


def csv_has_header(sheets: Sequence[Sheet]) -> bool:
    """Whether `german_csv(sheets)` starts with a header line (`header=present`)."""
    return len(sheets) == 1


# --- XLSX ---------------------------------------------------------------------------

_TAB_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_TAB_MAX = 31  # Excel refuses longer sheet names
# Control characters that XML 1.0 cannot carry; an operator's typo must not fail a download.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _tab_names(sheets: Sequence[Sheet]) -> list[str]:
    """Valid, distinct tab names: no []:*?/\\, at most 31 characters."""
    taken: set[str] = set()
    out = []
    for sheet in sheets:
        base = _TAB_FORBIDDEN.sub("-", sheet.name or sheet.title).strip("' ") or "Tabelle"
        name = base if len(base) <= _TAB_MAX else base[: _TAB_MAX - 1] + "…"
        n = 2
        while name.casefold() in taken:
            suffix = f" ({n})"
            name = base[: _TAB_MAX - len(suffix)] + suffix
            n += 1
        taken.add(name.casefold())
        out.append(name)
    return out


def _width(value: Value) -> int:
    if value is None:
        return 0
    if isinstance(value, date):
        return 10
    if isinstance(value, int):
        return len(f"{value:,}")
    return max((len(part) for part in value.splitlines()), default=0)


def _column_widths(sheet: Sheet) -> list[float]:
    columns = len(sheet.header)
    widths = [float(_width(h)) for h in sheet.header]
    for row in sheet.rows:
        for c, value in enumerate(row[:columns]):
            widths[c] = max(widths[c], _width(value))
    # Room for the autofilter arrow and padding; long text wraps instead of widening.
    return [min(max(w + 2, 8), 60) for w in widths]


def _write_sheet(book: Workbook, sheet: Sheet, tab: str, *, prose: bool = False) -> None:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    ws = book.create_sheet(title=tab)
    # Write-only mode: column widths, panes and print titles before the first row.
    widths = _column_widths(sheet)
    if prose:
        widths = [24, 100]
    for c, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = w
    ws.freeze_panes = "A3"
    ws.print_title_rows = "1:2"
    wrap = Alignment(wrap_text=True, vertical="top")

    def cell(value: Value, font: Font | None = None) -> Cell:
        made = WriteOnlyCell(ws)
        made.value = value
        if isinstance(value, str):
            # A string cell is never evaluated: names that look like formulas stay text.
            made.data_type = "s"
            if prose:
                made.alignment = wrap
        elif isinstance(value, date):
            made.number_format = "DD.MM.YYYY"
        if font is not None:
            made.font = font
        return made

    def body(value: Value) -> Value | Cell:
        # Plain values are written by openpyxl directly, several times faster than a
        # cell object each; only text it would read as a formula or an error code
        # ("=...", "#N/A") and dates need a cell of their own.
        if isinstance(value, str):
            value = _ILLEGAL.sub("", value)
            return cell(value) if prose or value.startswith(("=", "#")) else value
        return cell(value) if isinstance(value, date) else value

    ws.append([cell(_ILLEGAL.sub("", sheet.title), Font(bold=True, size=12))])
    bold = Font(bold=True)
    ws.append([cell(_ILLEGAL.sub("", h), bold) for h in sheet.header])
    for row in sheet.rows:
        ws.append([body(v) for v in row])
    if sheet.notes:
        ws.append([])
        italic = Font(italic=True)
        for note in sheet.notes:
            ws.append([cell(_ILLEGAL.sub("", note), italic)])


def xlsx(sheets: Sequence[Sheet], explanation: Explanation) -> bytes:
    """An XLSX workbook: one sheet per `Sheet`, then the sheet "Erläuterungen"."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    explain = explanation_sheet(explanation)
    every = [*sheets, explain]
    tabs = _tab_names(every)
    for sheet, tab in zip(every, tabs, strict=True):
        _write_sheet(book, sheet, tab, prose=sheet is explain)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
