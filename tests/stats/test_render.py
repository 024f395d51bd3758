"""Renderings: CSV and JSON carry the perturbed numbers and the published parameters,
never a cell key."""

from __future__ import annotations

import csv
import io
import json

from hub.stats.aggregate import PeriodData, Scope, TableSpec, tabulate
from hub.stats.disclosure import protect
from hub.stats.render import CSV_HEADER, csv_text, json_obj


def test_csv_has_one_line_per_number_with_the_protected_values(data: PeriodData) -> None:
    """Long CSV: 4x5 cells + 4 row + 5 column totals + total, each the protected value."""
    t = protect(tabulate(data, TableSpec("cases_new", "gender", "age_band")))
    rows = list(csv.DictReader(io.StringIO(csv_text([t]))))
    assert tuple(rows[0]) == CSV_HEADER
    assert len(rows) == 20 + 4 + 5 + 1
    by_pos = {(r["row"], r["col"]): int(r["value"]) for r in rows}
    assert by_pos == {(row or "total", col or "total"): e.value for row, col, e in t.entries()}
    grand = [r for r in rows if r["row"] == "total" and r["col"] == "total"]
    assert grand == [
        {
            "period": "2026-11",
            "scope": "region",
            "scope_key": "",
            "measure": "cases_new",
            "row_dim": "gender",
            "row": "total",
            "col_dim": "age_band",
            "col": "total",
            "value": str(t.total.value),
            "few_offices": "0",
        }
    ]
    assert abs(t.total.value - 23) <= 3
    assert not {r["value"] for r in rows} & {"1", "2"}


def test_json_object_is_serialisable_and_carries_no_cell_key(data: PeriodData) -> None:
    """JSON output has the protected values and the published parameters, no cell keys."""
    raw = tabulate(data, TableSpec("cases_new", "gender"), Scope("organisation", "caritas"))
    t = protect(raw)
    obj = json_obj(t)
    text = json.dumps(obj)
    for key in (*raw.row_keys, raw.total_key):
        assert f"{key}" not in text or key == 0
    assert obj["scope"] == {"level": "organisation", "key": "caritas"}
    assert obj["cells"] == [[], [], [], []]
    assert [e["value"] for e in obj["row_totals"]] == [e.value for e in t.row_totals]
    assert obj["total"] == {"value": t.total.value, "few_offices": True}
    assert obj["disclosure"] == {
        "method": "cell-key",
        "max_noise": 4,
        "variance": 1.0,
        "js": 2,
        "min_offices": 3,
    }


def test_csv_defuses_text_a_spreadsheet_would_run_as_a_formula() -> None:
    """Cells starting with =, +, -, @ are prefixed with an apostrophe; numbers stay numbers."""
    from hub.stats.render import write_csv

    text = write_csv(["name", "n"], [["=HYPERLINK(1)", -3], ["@SUM(A1)", 5], ["Caritas", 7]])
    assert text.splitlines() == [
        "name,n",
        "'=HYPERLINK(1),-3",
        "'@SUM(A1),5",
        "Caritas,7",
    ]
