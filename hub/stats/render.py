"""Plain renderings of protected tables, shared by the JSON API, CSV and dashboard.

They take a `ProtectedTable` only, so nothing unperturbed can be rendered. The
cell keys stay inside the hub: with a key and the published table a reader
could take the noise off again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from hub.stats.disclosure import DisclosurePolicy, Entry, ProtectedTable

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
    "few_offices",
)
TOTAL = "total"


# Text a spreadsheet would run as a formula starts with one of these (office and
# organisation names come from the operator; a CSV is opened in Excel or LibreOffice).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """The one CSV writer of the hub: header, then rows with every cell defused
    (text that starts like a formula gets a leading `'`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    start = _FORMULA_START
    # Inline rather than a function per value: this runs for every number of every table.
    writer.writerows(
        [("'" + v if isinstance(v, str) and v.startswith(start) else v) for v in row]
        for row in rows
    )
    return out.getvalue()


def csv_text(tables: Iterable[ProtectedTable]) -> str:
    """Long-format CSV, one (perturbed) number a line; totals carry the label `total`."""
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
            entry.value,
            int(entry.few_offices),
        )
        for t in tables
        for row, col, entry in t.entries()
    )
    return write_csv(CSV_HEADER, rows)


def _entry_obj(entry: Entry) -> dict[str, Any]:
    return {"value": entry.value, "few_offices": entry.few_offices}


def policy_obj(policy: DisclosurePolicy) -> dict[str, Any]:
    """The published parameters of the disclosure control (and its table, for analysts)."""
    p = policy.params
    return {
        "method": "cell-key",
        "max_noise": p.max_noise,
        "variance": p.variance,
        "js": p.js,
        "min_offices": policy.min_offices,
    }


def json_obj(table: ProtectedTable) -> dict[str, Any]:
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
        "disclosure": policy_obj(table.policy),
    }
