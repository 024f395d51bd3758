"""Renderings: CSV and JSON carry protected numbers only, never the suppression reason."""

from __future__ import annotations

import csv
import io
import json

from hub.stats.aggregate import PeriodData, Scope, TableSpec, tabulate
from hub.stats.disclosure import protect
from hub.stats.render import CSV_HEADER, csv_text, json_obj


def test_csv_has_one_line_per_number_and_blanks_suppressed(data: PeriodData) -> None:
    """Long CSV: 4x5 cells + 4 row + 5 column totals + total; hidden values are empty."""
    t = protect(tabulate(data, TableSpec("cases_new", "gender", "age_band")))
    rows = list(csv.DictReader(io.StringIO(csv_text([t]))))
    assert tuple(rows[0]) == CSV_HEADER
    assert len(rows) == 20 + 4 + 5 + 1
    hidden = [r for r in rows if r["status"] == "suppressed"]
    assert {(r["row"], r["col"]) for r in hidden} == {
        ("female", "27_39"),
        ("female", "under_27"),
        ("male", "27_39"),
        ("male", "under_27"),
    }
    assert all(r["value"] == "" for r in hidden)
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
            "value": "23",
            "status": "published",
            "few_offices": "0",
        }
    ]
    assert "primary" not in csv_text([t])
    assert "secondary" not in csv_text([t])


def test_json_object_is_serialisable_and_hides_reasons(data: PeriodData) -> None:
    """JSON output has nulls for suppressed numbers and the policy, no reasons."""
    t = protect(tabulate(data, TableSpec("cases_new", "gender"), Scope("organisation", "caritas")))
    obj = json_obj(t)
    text = json.dumps(obj)
    assert "primary" not in text
    assert "secondary" not in text
    assert obj["scope"] == {"level": "organisation", "key": "caritas"}
    assert obj["cells"] == [[], [], [], []]
    assert [e["value"] for e in obj["row_totals"]] == [0, 11, 4, 0]
    assert obj["total"] == {"value": 15, "suppressed": False, "few_offices": True}
    assert obj["disclosure"] == {"k": 3, "min_offices": 3}


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
