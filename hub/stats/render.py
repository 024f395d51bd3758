"""Plain renderings of protected tables, shared by the JSON API, CSV and dashboard.

They take a `SuppressedTable` only, so nothing unprotected can be rendered.
The reason for a suppression is deliberately left out (see disclosure.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from hub.stats.disclosure import Entry, SuppressedTable

CSV_HEADER = (
    "period",
    "scope",
    "scope_key",
    "measure",
    "row_dim",
    "row",
    "col_dim",
    "col",
    "value",
    "status",
    "few_offices",
)
TOTAL = "total"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """Defuse text a spreadsheet would run as a formula (office and organisation
    names come from the operator; a CSV is opened in Excel or LibreOffice)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """The one CSV writer of the hub: header, then rows with every cell defused."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([spreadsheet_safe(v) for v in row] for row in rows)
    return out.getvalue()


def _status(entry: Entry) -> str:
    return "suppressed" if entry.suppressed else "published"


def csv_text(tables: Iterable[SuppressedTable]) -> str:
    """Long-format CSV, one number a line; totals carry the label `total`.

    A suppressed number has an empty value and the status `suppressed`.
    """
    rows = (
        (
            t.period,
            t.scope.level,
            t.scope.key,
            t.spec.measure,
            t.spec.rows or "",
            TOTAL if row is None else row,
            t.spec.cols or "",
            TOTAL if col is None else col,
            "" if entry.value is None else entry.value,
            _status(entry),
            int(entry.few_offices),
        )
        for t in tables
        for row, col, entry in t.entries()
    )
    return write_csv(CSV_HEADER, rows)


def _entry_obj(entry: Entry) -> dict[str, Any]:
    return {"value": entry.value, "suppressed": entry.suppressed, "few_offices": entry.few_offices}


def json_obj(table: SuppressedTable) -> dict[str, Any]:
    """A JSON-ready dict: labels, a matrix of entries, the margins and the policy."""
    return {
        "period": table.period,
        "scope": {"level": table.scope.level, "key": table.scope.key},
        "measure": table.spec.measure,
        "rows": table.spec.rows,
        "cols": table.spec.cols,
        "row_labels": list(table.row_labels),
        "col_labels": list(table.col_labels),
        "cells": [[_entry_obj(e) for e in row] for row in table.cells],
        "row_totals": [_entry_obj(e) for e in table.row_totals],
        "col_totals": [_entry_obj(e) for e in table.col_totals],
        "total": _entry_obj(table.total),
        "reporting_offices": table.reporting_offices,
        "disclosure": {"k": table.policy.k, "min_offices": table.policy.min_offices},
    }
