"""Aggregating and protecting one period for a whole region, next to a bare SQL sum.

A script, not a test: `python -m bench.stats [--offices 1500] [--months 36]`.

It builds a temporary hub database with the hub's own schema (migrations of
hub/storage), filled with published monthly reports of `--offices` offices in
six organisations over `--months` months. Report contents come from simulated
case populations (office sizes, genders, ages, residence, topics,
nationalities drawn at random), so the number of non-zero cells per report is
what a real office would send; every cell carries a random cell key. To keep
set-up time bounded, each report reuses one of `--templates` populations.

Then, for one period, it times:
* ours: what the hub does for a region coordinator: read the period's
  published cells summed per organisation (`published_organisations`, SQL),
  index them, tabulate every table of the dataset (each measure: total, every
  single dimension, every pair, and by organisation), protect each with the
  disclosure control (perturbation) and render all to CSV;
* sql: `SELECT cell_id, SUM(count), COUNT(*) ... GROUP BY cell_id` over the
  same rows (the bare sum, no organisations, no keys);
and prints both and the ratio.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# Allow `python bench/stats.py` from the repository root without installing.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlite_utils

from hub.stats.aggregate import PeriodData, TableSpec, tabulate
from hub.stats.cells import CellIdent, dims_text
from hub.stats.disclosure import DisclosurePolicy, protect
from hub.stats.periods import parse_period
from hub.stats.render import csv_text
from hub.stats.store import published_organisations
from hub.storage.db import connect
from protocol import codes

CROSS = tuple(sorted(codes.CROSS_DIMENSIONS))
NATIONALITIES: tuple[str, ...] = (
    "SY",
    "UA",
    "TR",
    "AF",
    "IQ",
    "RO",
    "PL",
    "BG",
    "RU",
    "IR",
    "ER",
    "SO",
    "KO",
)
NATIONALITIES += ("GR", "IT", "HR", "RS", "BA", "XK", "NG", "VN", "IN", "MA", "DZ", "XX")
ORGANISATIONS = ("awo", "caritas", "diakonie", "drk", "paritaet", "zwst")

Item = tuple[int, dict[str, str], tuple[str, ...], str | None]  # weight, dims, topics, breakdown


def pick(rng: random.Random, values: tuple[str, ...] | frozenset[str]) -> str:
    ordered = sorted(values)
    # Skewed: earlier codes of a shuffled order are much more common, as in real caseloads.
    weights = [1 / (i + 1) for i in range(len(ordered))]
    return rng.choices(ordered, weights)[0]


def simulate_cells(rng: random.Random, active: int) -> dict[CellIdent, int]:
    """Non-zero cells of one monthly report for an office with `active` open cases."""
    cases: list[tuple[dict[str, str], tuple[str, ...]]] = []
    for _ in range(active):
        topics = tuple(sorted(set(rng.sample(sorted(codes.TOPIC), rng.randint(1, 3)))))
        dims = {
            "gender": pick(rng, codes.GENDER),
            "age_band": pick(rng, codes.AGE_BAND),
            "residence": pick(rng, codes.RESIDENCE),
            "length_of_stay": pick(rng, codes.LENGTH_OF_STAY),
            "nationality": pick(rng, NATIONALITIES),
        }
        cases.append((dims, topics))
    items: dict[str, list[Item]] = {m: [] for m in codes.MEASURES}
    for dims, topics in cases:
        items["cases_active"].append((1, dims, topics, None))
        if rng.random() < 0.2:
            items["cases_new"].append((1, dims, topics, None))
        if rng.random() < 0.15:
            items["cases_closed"].append((1, dims, topics, pick(rng, codes.CLOSURE)))
        if rng.random() < 0.3:
            items["case_management_with_agreement"].append((1, dims, topics, None))
        family = rng.choice((0, 0, 0, 1, 2, 3))
        if family:
            items["family_members"].append((family, dims, topics, None))
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            items["contacts"].append((1, dims, topics, pick(rng, codes.CONTACT_CHANNEL)))
        if rng.random() < 0.12:
            target = pick(rng, codes.REFERRAL_TARGET)
            items["referrals_sent"].append((1, dims, topics, target))
            if rng.random() < 0.7:
                items["referrals_accepted"].append((1, dims, topics, target))
    cells: dict[CellIdent, int] = {}
    subsets = [s for n in range(3) for s in itertools.combinations(CROSS, n)]
    for measure, measure_items in items.items():
        breakdown = codes.MEASURES[measure]
        for weight, dims, topics, value in measure_items:
            for subset in subsets:
                # A case counts once in each of its topics (topics overlap).
                topic_choices: tuple[str | None, ...] = topics if "topic" in subset else (None,)
                for topic in topic_choices:
                    base = {d: dims[d] for d in subset if d != "topic"}
                    if topic is not None:
                        base["topic"] = topic
                    variants = [base]
                    if breakdown is not None and value is not None:
                        variants.append({**base, breakdown[0]: value})
                    for v in variants:
                        key = (measure, tuple(sorted(v.items())))
                        cells[key] = cells.get(key, 0) + weight
    return cells


def months(count: int) -> list[str]:
    out = []
    year, month = 2024, 1
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def build(db: sqlite3.Connection, offices: int, n_months: int, templates: int, seed: int) -> int:
    rng = random.Random(seed)
    db.execute("BEGIN")
    pool = [simulate_cells(rng, int(rng.lognormvariate(4.7, 0.5))) for _ in range(templates)]
    ids: dict[CellIdent, int] = {}
    for template in pool:
        for ident in template:
            ids.setdefault(ident, len(ids) + 1)
    db.executemany(
        "INSERT INTO stats_cells (id, measure, dims) VALUES (?, ?, ?)",
        ((i, m, dims_text(d)) for (m, d), i in ids.items()),
    )
    encoded = [sorted((ids[k], n) for k, n in template.items()) for template in pool]
    periods = months(n_months)
    db.executemany(
        "INSERT INTO stats_publications (period, published, cutoff, reports) VALUES (?, 0, 0, ?)",
        ((p, offices) for p in periods),
    )
    rows = 0
    report_id = 0
    for office in range(offices):
        name = f"office-{office:04d}"
        db.execute(
            "INSERT INTO sites (node_id, name, org, services, languages, area, status, created) "
            "VALUES (?, ?, ?, '[]', '[]', '', 'active', 0)",
            (name, name, ORGANISATIONS[office % len(ORGANISATIONS)]),
        )
        for period in periods:
            report_id += 1
            db.execute(
                "INSERT INTO stats_reports (id, office, period, revision, generated, received, "
                "msg_id, digest, current, dataset_version) "
                "VALUES (?, ?, ?, 1, 0, 0, '', x'', 1, 2)",
                (report_id, name, period),
            )
            db.execute(
                "INSERT INTO stats_published_reports (period, report_id, office, org) "
                "VALUES (?, ?, ?, ?)",
                (period, report_id, name, ORGANISATIONS[office % len(ORGANISATIONS)]),
            )
            cells = encoded[rng.randrange(templates)]
            db.executemany(
                "INSERT INTO stats_report_cells (report_id, cell_id, count, cell_key) "
                "VALUES (?, ?, ?, ?)",
                ((report_id, cell_id, n, rng.getrandbits(32)) for cell_id, n in cells),
            )
            rows += len(cells)
        db.execute("COMMIT")
        db.execute("BEGIN")
    db.execute("COMMIT")
    db.execute("ANALYZE")
    return rows


def all_specs() -> Iterator[TableSpec]:
    for measure, breakdown in codes.MEASURES.items():
        dims = ([breakdown[0]] if breakdown else []) + list(CROSS)
        yield TableSpec(measure)
        yield TableSpec(measure, "organisation")
        for d in dims:
            yield TableSpec(measure, d)
        for a, b in itertools.combinations(dims, 2):
            # Cells cross at most MAX_CROSS dimensions besides the measure's breakdown.
            yield TableSpec(measure, a, b)


def ours(db: sqlite_utils.Database, period: str) -> tuple[dict[str, float], int, int]:
    t0 = time.perf_counter()
    rows, idents, per_org = published_organisations(db, period)
    t1 = time.perf_counter()
    orgs = {o: o for o in per_org}
    data = PeriodData.from_unit_rows(
        parse_period(period), rows, idents, orgs, per_org, level="organisation"
    )
    t2 = time.perf_counter()
    policy = DisclosurePolicy()
    tables = [protect(tabulate(data, spec), policy) for spec in all_specs()]
    t3 = time.perf_counter()
    text = csv_text(tables)
    t4 = time.perf_counter()
    times = {"read": t1 - t0, "index": t2 - t1, "tabulate+protect": t3 - t2, "csv": t4 - t3}
    return times, len(tables), text.count("\n") - 1


def bare_sql(db: sqlite3.Connection, period: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    result = db.execute(
        "SELECT c.cell_id, SUM(c.count), COUNT(*) FROM stats_published_reports p "
        "JOIN stats_report_cells c ON c.report_id = p.report_id WHERE p.period = ? "
        "GROUP BY c.cell_id",
        (period,),
    ).fetchall()
    return time.perf_counter() - t0, len(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offices", type=int, default=1500)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--templates", type=int, default=40)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--period", default="2025-06")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hub_db = connect(Path(tmp) / "hub.db")  # the hub's own schema
        db = hub_db.conn
        db.execute("PRAGMA journal_mode = OFF")  # a throw-away database: no rollback needed
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA foreign_keys = OFF")
        t0 = time.perf_counter()
        rows = build(db, args.offices, args.months, args.templates, args.seed)
        size = (Path(tmp) / "hub.db").stat().st_size
        print(
            f"built {args.offices} offices x {args.months} months: {rows:,} cell rows "
            f"({rows / (args.offices * args.months):,.0f} per report), "
            f"{size / 2**20:,.0f} MiB, {time.perf_counter() - t0:.1f} s"
        )
        bare_sql(db, args.period)  # warm the page cache for both contenders alike
        sql_time, sql_keys = bare_sql(db, args.period)
        times, n_tables, n_lines = ours(hub_db, args.period)
        total = sum(times.values())
        print(f"period {args.period}: {sql_keys:,} distinct cells")
        print(f"bare SQL sum:           {sql_time:8.3f} s")
        parts = ", ".join(f"{k} {v:.3f}" for k, v in times.items())
        print(f"ours ({n_tables} tables, {n_lines:,} CSV lines): {total:8.3f} s  ({parts})")
        print(f"ratio ours / SQL:       {total / sql_time:8.1f}")
        db.close()


if __name__ == "__main__":
    main()
