"""Downloads for German office software (csv-de, xlsx): German labels, the same numbers
as the JSON, formula-like names defused, and an explanation of the perturbation."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import date, datetime
from typing import Any

import openpyxl
import pytest
from openpyxl.workbook.workbook import Workbook

from hub.stats import labels as code_labels
from hub.stats.aggregate import PeriodData, Scope, TableSpec, tabulate
from hub.stats.disclosure import DisclosurePolicy, ProtectedTable, protect
from hub.stats.exports import (
    EXPLANATION_TITLE,
    Explanation,
    Sheet,
    completeness_sheet,
    german_csv,
    offices_sheet,
    table_sheet,
    xlsx,
)
from hub.stats.periods import Timeliness
from hub.stats.ptable import PerturbationParams
from hub.stats.view import OVERVIEW_SPECS, CompletenessRow
from hub.storage.sites import Site
from protocol.code_labels import GENDER
from tests.hub.client import problem_kind
from tests.stats.hubside import ACTIVE, PERIOD, StatsHub, three_offices

pytestmark = pytest.mark.one_engine  # tests/conftest.py


BOM = b"\xef\xbb\xbf"
MARK = "¹"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EVIL = ('=HYPERLINK("http://evil.invalid","x")', "+49 221 1", "-1+2", "@SUM(A1)")


def table(data: PeriodData, rows: str | None = None, cols: str | None = None) -> ProtectedTable:
    return protect(tabulate(data, TableSpec("cases_new", rows, cols), Scope.region()))


def explanation(policy: DisclosurePolicy | None = None) -> Explanation:
    return Explanation(
        region="Region Köln",
        data_date=date(2026, 12, 16),
        data_note="Veröffentlichung der Zahlen",
        period=PERIOD,
        policy=policy,
    )


def csv_lines(body: bytes) -> list[list[str]]:
    """The lines of a German CSV, checked for BOM, CRLF and UTF-8."""
    assert body.startswith(BOM)
    text = body[len(BOM) :].decode("utf-8")
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


def first_block(lines: list[list[str]]) -> list[list[str]]:
    """Header and rows of a one-table CSV: the lines up to the first empty one."""
    return lines[: lines.index([])]


def load(body: bytes) -> Workbook:
    return openpyxl.load_workbook(io.BytesIO(body))


def sheet_values(book: Workbook, name: str) -> list[list[Any]]:
    return [list(r) for r in book[name].iter_rows(values_only=True)]


def json_numbers(t: dict[str, Any]) -> list[list[tuple[int, bool]]]:
    """A JSON table's numbers in the layout of a sheet: a line per row, totals last."""

    def pairs(entries: list[dict[str, Any]]) -> list[tuple[int, bool]]:
        return [(e["value"], e["few_offices"]) for e in entries]

    if t["rows"] is None:
        return [pairs([t["total"]])]
    if t["cols"] is None:
        return [pairs([e]) for e in t["row_totals"]] + [pairs([t["total"]])]
    rows = zip(t["cells"], t["row_totals"], strict=True)
    lines = [pairs([*cells, total]) for cells, total in rows]
    return [*lines, pairs([*t["col_totals"], t["total"]])]


def sheet_numbers(rows: list[list[Any]]) -> list[list[tuple[int, bool]]]:
    """Numbers and marks of sheet lines (label, number, mark, number, mark, ...)."""
    out = []
    for row in rows:
        values, marks = row[1::2], row[2::2]
        out.append([(int(v), m == MARK) for v, m in zip(values, marks, strict=True)])
    return out


# --- the module -----------------------------------------------------------------------


def test_table_sheet_labels_in_german_with_totals_and_mark_columns(data: PeriodData) -> None:
    """0-D, 1-D and 2-D tables get German labels, "Insgesamt" and a Hinweis column per number."""
    zero = table_sheet(table(data))
    assert zero.header == ("Kennzahl", "Anzahl", "Hinweis")
    assert zero.rows[0][0] == "Neue Fälle"
    one = table_sheet(table(data, "gender"))
    assert one.header == ("Geschlecht", "Anzahl", "Hinweis")
    assert one.rows[-1][0] == "Insgesamt"
    assert one.title == "Neue Fälle nach Geschlecht, November 2026"
    t = table(data, "gender", "age_band")
    two = table_sheet(t)
    assert two.header == (
        "Geschlecht",
        *(x for c in t.col_labels for x in (code_labels.code("age_band", c), "Hinweis")),
        "Insgesamt",
        "Hinweis",
    )
    assert "unter 27" in two.header
    assert [r[0] for r in two.rows] == [GENDER[g] for g in t.row_labels] + ["Insgesamt"]
    for row in two.rows:
        assert all(isinstance(v, int) for v in row[1::2])
        assert all(m in (MARK, None) for m in row[2::2])
    assert any(MARK in n for n in two.notes)


def test_german_csv_has_bom_semicolons_crlf_and_german_labels(data: PeriodData) -> None:
    """The CSV starts with the BOM, separates by `;`, ends lines CRLF, labels in German."""
    t = table(data, "gender")
    body = german_csv([table_sheet(t)], explanation(t.policy))
    lines = csv_lines(body)
    assert lines[0] == ["Geschlecht", "Anzahl", "Hinweis"]
    block = first_block(lines)
    assert block[-1][0] == "Insgesamt"
    assert [r[0] for r in block[1:-1]] == [GENDER[g] for g in t.row_labels]
    numbers = [int(r[1]) for r in block[1:]]
    assert numbers == [e.value for e in t.row_totals] + [t.total.value]
    assert ["Erläuterungen"] in lines


def test_formula_like_names_are_defused_in_csv_and_kept_as_text_in_xlsx() -> None:
    """Names starting with = + - @ get a leading ' in the CSV and are string cells in XLSX."""
    rows = [
        CompletenessRow(f"office-{i}", name, name, Timeliness.ON_TIME, date(2026, 12, 5), 1)
        for i, name in enumerate(EVIL)
    ]
    sheet = completeness_sheet(rows, PERIOD)
    block = first_block(csv_lines(german_csv([sheet])))
    assert [r[:2] for r in block[1:]] == [["'" + n, "'" + n] for n in EVIL]
    assert block[1][2:5] == ["gemeldet", "05.12.2026", "1"]
    book = load(xlsx([sheet], explanation()))
    ws = book["Meldestand"]
    names = [ws.cell(row=r, column=1) for r in range(3, 3 + len(EVIL))]
    assert [c.value for c in names] == list(EVIL)
    assert {c.data_type for c in names} == {"s"}  # text, never a formula
    received = ws.cell(row=3, column=4)
    assert received.value == datetime(2026, 12, 5)  # a real date cell, shown as TT.MM.JJJJ
    assert received.number_format == "DD.MM.YYYY"


def test_offices_sheet_labels_services_and_status_in_german() -> None:
    """The directory shows services and status as German labels, languages as codes."""
    site = Site("n1", "Mitte", "Caritas", ("mbe", "jobcenter"), ("de", "ar"), "", "active", 0)
    assert offices_sheet([site]).rows == (
        ("Mitte", "Caritas", None, "MBE, Jobcenter", "de, ar", "aktiv", "n1"),
    )


def test_xlsx_has_a_sheet_per_table_bold_frozen_header_and_explanation(data: PeriodData) -> None:
    """Each table is a sheet (title row, bold frozen header, int cells); Erläuterungen last."""
    policy = DisclosurePolicy(PerturbationParams(max_noise=5, variance=1.0, js=2), min_offices=4)
    tables = [protect(tabulate(data, TableSpec("cases_new", "gender", "age_band")), policy)]
    tables.append(protect(tabulate(data, TableSpec("cases_new", "gender")), policy))
    book = load(xlsx([table_sheet(t) for t in tables], explanation(policy)))
    assert book.sheetnames[-1] == EXPLANATION_TITLE
    assert len(book.sheetnames) == 3
    assert all(len(n) <= 31 for n in book.sheetnames)
    ws = book[book.sheetnames[0]]
    assert ws.freeze_panes == "A3"
    assert ws["A1"].value == "Neue Fälle nach Geschlecht und Altersgruppe, November 2026"
    assert ws["A2"].value == "Geschlecht"
    assert ws["A2"].font.b
    assert ws.column_dimensions["A"].width >= len("Geschlecht")
    rows = sheet_values(book, book.sheetnames[0])
    body = rows[2 : 2 + len(tables[0].row_labels) + 1]
    assert sheet_numbers(body) == [
        [(e.value, e.few_offices) for e in (*cells, total)]
        for cells, total in zip(
            (*tables[0].cells, tables[0].col_totals),
            (*tables[0].row_totals, tables[0].total),
            strict=True,
        )
    ]
    text = " ".join(str(v) for row in sheet_values(book, EXPLANATION_TITLE) for v in row if v)
    assert "höchstens 5 vom wahren Wert" in text
    assert "weniger als 4 Beratungsstellen" in text
    for fact in ("Region Köln", "November 2026", "16.12.2026"):
        assert fact in text
    assert "Vertraulich" in text


def test_tab_names_are_valid_and_distinct() -> None:
    """Long, repeated or forbidden-character titles still make valid, distinct tabs."""
    sheets = [Sheet("Aktive Fälle nach Aufenthaltsstatus und Träger", ("a",), ((1,),))] * 2
    sheets.append(Sheet("a/b: [c]?", ("a",), ()))
    book = load(xlsx(sheets, explanation()))
    names = book.sheetnames
    assert len(set(names)) == 4
    assert all(len(n) <= 31 and not set(n) & set("[]:*?/\\") for n in names)


def test_the_hub_does_not_load_openpyxl_at_start() -> None:
    """Importing the hub with its statistics routes leaves openpyxl unloaded (memory)."""
    code = "import sys, hub.app, hub.stats.routes; sys.exit('openpyxl' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the API ----------------------------------------------------------------------------


async def get(hub: StatsHub, path: str, token: str) -> Any:
    resp = await hub.http.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200, await resp.text()
    return resp


async def test_german_csv_of_a_table_holds_the_json_numbers(stats_hub: StatsHub) -> None:
    """csv-de of a 2-D table: BOM, `;`, German header, and every number and flag of its JSON."""
    await three_offices(stats_hub)
    token = stats_hub.token()
    path = f"/coordinator/v1/tables?period={PERIOD}&measure={ACTIVE}"
    path += "&rows=organisation&cols=residence"
    doc = await stats_hub.get_json(path, token)
    resp = await get(stats_hub, path + "&format=csv-de", token)
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8; header=present"
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="mbe-{PERIOD}-{ACTIVE}-organisation-residence.csv"'
    )
    lines = csv_lines(await resp.read())
    block = first_block(lines)
    assert block[0][0] == "Träger"
    assert block[0][-2:] == ["Insgesamt", "Hinweis"]
    assert [r[0] for r in block[1:]] == ["Caritas", "Diakonie", "Insgesamt"]
    assert sheet_numbers(block[1:]) == json_numbers(doc)
    assert "Duldung" in block[0]  # residence codes as German labels


async def test_xlsx_overview_holds_the_json_numbers_of_every_table(stats_hub: StatsHub) -> None:
    """The overview XLSX has a sheet per JSON table with exactly its numbers, and Erläuterungen."""
    await three_offices(stats_hub)
    token = stats_hub.token()
    doc = await stats_hub.get_json(f"/coordinator/v1/overview?period={PERIOD}", token)
    resp = await get(stats_hub, f"/coordinator/v1/overview?period={PERIOD}&format=xlsx", token)
    assert resp.content_type == XLSX_TYPE
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="mbe-{PERIOD}-uebersicht.xlsx"'
    )
    book = load(await resp.read())
    assert len(book.sheetnames) == len(doc["tables"]) + 1
    for name, t in zip(book.sheetnames, doc["tables"], strict=False):
        rows = sheet_values(book, name)
        body = rows[2 : 2 + len(json_numbers(t))]
        assert sheet_numbers(body) == json_numbers(t), name
        assert all(type(v) is int for row in body for v in row[1::2]), name
    text = " ".join(str(v) for row in sheet_values(book, EXPLANATION_TITLE) for v in row if v)
    max_noise = doc["tables"][0]["disclosure"]["max_noise"]
    assert f"höchstens {max_noise} vom wahren Wert" in text
    assert "Datenstand 16.12.2026" in text  # the day the numbers were fixed
    assert "Region Köln" in text


async def test_overview_csv_de_gives_each_table_a_title(stats_hub: StatsHub) -> None:
    """The overview csv-de lists its ten tables, each under a German title line."""
    await three_offices(stats_hub)
    token = stats_hub.token()
    resp = await get(stats_hub, f"/coordinator/v1/overview?period={PERIOD}&format=csv-de", token)
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8; header=absent"
    lines = csv_lines(await resp.read())
    titles = [r[0] for r in lines if len(r) == 1 and r[0].endswith("November 2026")]
    assert titles[:2] == ["Neue Fälle, November 2026", "Aktive Fälle, November 2026"]
    assert "Aktive Fälle nach Thema, November 2026" in titles
    assert len(titles) == len(OVERVIEW_SPECS)


async def test_completeness_and_offices_downloads_are_german(stats_hub: StatsHub) -> None:
    """Meldestand and directory as csv-de and xlsx: German status labels, German file names."""
    await three_offices(stats_hub)
    token = stats_hub.token()
    base = f"/coordinator/v1/completeness?period={PERIOD}&format="
    resp = await get(stats_hub, base + "csv-de", token)
    assert resp.headers["Content-Disposition"].endswith(f'"mbe-{PERIOD}-meldestand.csv"')
    block = first_block(csv_lines(await resp.read()))
    assert block[0][:3] == ["Beratungsstelle", "Träger", "Status"]
    assert {r[2] for r in block[1:]} == {"gemeldet"}
    assert {r[3] for r in block[1:]} == {"05.12.2026"}
    book = load(await (await get(stats_hub, base + "xlsx", token)).read())
    assert book.sheetnames == ["Meldestand", EXPLANATION_TITLE]
    resp = await get(stats_hub, "/coordinator/v1/offices?format=xlsx", token)
    assert resp.headers["Content-Disposition"].endswith('"mbe-beratungsstellen.xlsx"')
    rows = sheet_values(load(await resp.read()), "Beratungsstellen")
    assert rows[1][:6] == ["Beratungsstelle", "Träger", "Gebiet", "Angebote", "Sprachen", "Status"]
    assert {r[5] for r in rows[2:5]} == {"aktiv"}
    assert {r[3] for r in rows[2:5]} == {"MBE"}  # the service code mbe, labelled


async def test_formula_like_office_names_are_defused_in_downloads(stats_hub: StatsHub) -> None:
    """An operator's office name that looks like a formula reaches Excel as text only."""
    token = stats_hub.token()
    stats_hub.add_site(EVIL[0], EVIL[3])
    resp = await get(stats_hub, "/coordinator/v1/offices?format=csv-de", token)
    block = first_block(csv_lines(await resp.read()))
    assert block[1][:2] == ["'" + EVIL[0], "'" + EVIL[3]]
    resp = await get(stats_hub, "/coordinator/v1/offices?format=xlsx", token)
    ws = load(await resp.read())["Beratungsstellen"]
    assert (ws["A3"].value, ws["A3"].data_type) == (EVIL[0], "s")
    assert (ws["B3"].value, ws["B3"].data_type) == (EVIL[3], "s")


async def test_org_limited_coordinator_xlsx_holds_only_its_organisation(
    stats_hub: StatsHub,
) -> None:
    """A Caritas coordinator's XLSX downloads name no Diakonie office or organisation."""
    _, _, c = await three_offices(stats_hub)
    token = stats_hub.token("Caritas")
    for path in (
        f"/coordinator/v1/overview?period={PERIOD}",
        f"/coordinator/v1/tables?period={PERIOD}&measure={ACTIVE}&rows=office&cols=topic",
        f"/coordinator/v1/completeness?period={PERIOD}",
        "/coordinator/v1/offices?",
    ):
        book = load(await (await get(stats_hub, f"{path}&format=xlsx", token)).read())
        cells = [str(v) for n in book.sheetnames for r in sheet_values(book, n) for v in r if v]
        for secret in (c.node_id, "Diakonie", "Köln-Nord"):
            assert not any(secret in v for v in cells), (path, secret)
        assert any("Träger" in v for v in cells)


async def test_unknown_format_is_refused_naming_the_allowed_ones(stats_hub: StatsHub) -> None:
    """format=xls (or xlsx for periods) is 400 malformed, and the detail lists the choices."""
    await three_offices(stats_hub)
    token = stats_hub.token()
    for path, allowed in (
        (f"/coordinator/v1/tables?period={PERIOD}&measure={ACTIVE}&format=xls", "csv-de, xlsx"),
        (f"/coordinator/v1/overview?period={PERIOD}&format=CSV", "csv-de, xlsx"),
        (f"/coordinator/v1/completeness?period={PERIOD}&format=", "csv-de, xlsx"),
        ("/coordinator/v1/offices?format=ods", "csv-de, xlsx"),
        ("/coordinator/v1/periods?format=xlsx", "json, csv"),
    ):
        resp = await stats_hub.http.request(
            "GET", path, headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status == 400, path
        assert resp.content_type == "application/problem+json"
        body = await resp.json()
        assert problem_kind(body) == "malformed"
        assert allowed in body["detail"], path
