"""The hub's statistics read path for one period of a whole region, next to a bare SQL sum.

A script, not a test: `python -m bench.stats [--offices 1500] [--months 36]`.

It builds a temporary hub database with the hub's own schema (migrations of
hub/storage), filled with monthly reports of `--offices` offices in six
organisations over `--months` months, and publishes every month with the hub's
own `publish` (hub/stats/store.py: it fixes the reports and sums their cells
per organisation). Report contents come from simulated case populations
(office sizes, genders, ages, residence, topics, nationalities drawn at
random), so the number of non-zero cells per report is what a real office
would send; every cell carries a random cell key. To keep set-up time bounded,
each report reuses one of `--templates` populations.

Then, for `--period`, it measures in the same run:
* publish: what the first request after the deadline does once (choose the
  reports, sum them per organisation);
* sql: `SELECT cell_id, SUM(count), COUNT(*) ... GROUP BY cell_id` over the
  period's published cells, the bare sum (the ceiling of any read that sums at
  request time);
* ours: the hub's real read path, `hub.stats.published.protected_tables`, the
  function every coordinator route runs on the database thread, called once
  per table as the API is asked: for the region coordinator every table of the
  dataset (each measure: total, by organisation, every dimension, every pair)
  and every table with a row per office; for an organisation-limited
  coordinator the same; for one office every table of the dataset; all
  rendered to CSV. The hub caches nothing, so every call reads the database:
  pass 1 right after opening a new connection (SQLite's page cache empty),
  pass 2 again on it;
* peak memory: a third pass under tracemalloc, the peak of Python allocations
  per workload (SQLite's page cache is not Python memory and not counted),
  and the process's maximum resident set size (getrusage) at the end,
  which the database build dominates.
"""

from __future__ import annotations

import argparse
import itertools
import random
import resource
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

# Allow `python bench/stats.py` from the repository root without installing.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.stats.aggregate import OFFICE, ORGANISATION, Scope, TableSpec
from hub.stats.cells import CellIdent, dims_text
from hub.stats.disclosure import DisclosurePolicy
from hub.stats.periods import Period, parse_period
from hub.stats.published import protected_tables
from hub.stats.render import csv_text
from hub.stats.store import publish
from hub.storage.db import connect
from hub.storage.engine import SqliteDb
from protocol import codes

CROSS = tuple(sorted(codes.CROSS_DIMENSIONS))
# The measures of dataset version 2, which the simulated reports are (dataset_version 2
# below): the tables asked for stay those the documented figures were measured with.
MEASURES = {m: b for m, b in codes.MEASURES.items() if m not in codes.MEASURES_SINCE}
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
    """Sites and one report per office and month with its cells; nothing published yet."""
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


def dataset_specs() -> list[TableSpec]:
    """Every table of the dataset: per measure the total, by organisation, every
    dimension and every pair (212 tables)."""
    out = []
    for measure, breakdown in MEASURES.items():
        dims = ([breakdown[0]] if breakdown else []) + list(CROSS)
        out += [TableSpec(measure), TableSpec(measure, ORGANISATION)]
        out += [TableSpec(measure, d) for d in dims]
        # Cells cross at most MAX_CROSS dimensions besides the measure's breakdown.
        out += [TableSpec(measure, a, b) for a, b in itertools.combinations(dims, 2)]
    return out


def office_specs() -> list[TableSpec]:
    """Every table with a row per office: per measure alone and by each dimension."""
    out = []
    for measure, breakdown in MEASURES.items():
        dims = ([breakdown[0]] if breakdown else []) + list(CROSS)
        out += [TableSpec(measure, OFFICE)] + [TableSpec(measure, OFFICE, d) for d in dims]
    return out


@dataclass(frozen=True)
class Workload:
    """The tables one kind of coordinator asks for, one request per table."""

    name: str
    org: str | None
    scope: Scope
    specs: list[TableSpec]


def workloads(office: str) -> list[Workload]:
    org = ORGANISATIONS[0]
    return [
        Workload("region, dataset", None, Scope.region(), dataset_specs()),
        Workload("region, rows by office", None, Scope.region(), office_specs()),
        Workload(f"organisation {org}, dataset", org, Scope.region(), dataset_specs()),
        Workload(f"organisation {org}, by office", org, Scope.region(), office_specs()),
        Workload(f"one office ({office})", None, Scope("office", office), dataset_specs()),
    ]


def run(db: SqliteDb, period: Period, work: Workload) -> tuple[float, float, int]:
    """Every table of `work` through the hub's read path, each rendered to CSV as its
    request would be: (seconds in all, of which CSV rendering, CSV lines)."""
    policy = DisclosurePolicy()
    lines = 0
    rendering = 0.0
    t0 = time.perf_counter()
    for spec in work.specs:
        tables = protected_tables(db, policy, period, work.org, (spec,), work.scope)
        t1 = time.perf_counter()
        lines += csv_text(tables).count("\n") - 1
        rendering += time.perf_counter() - t1
    return time.perf_counter() - t0, rendering, lines


def peak_memory(db: SqliteDb, period: Period, work: Workload) -> int:
    """Peak bytes of Python allocations while `work` runs (tracemalloc)."""
    tracemalloc.start()
    try:
        run(db, period, work)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bare_sql(db: sqlite3.Connection, period: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    result = db.execute(
        "SELECT c.cell_id, SUM(c.count), COUNT(*) FROM stats_published_reports p "
        "JOIN stats_report_cells c ON c.report_id = p.report_id WHERE p.period = ? "
        "GROUP BY c.cell_id",
        (period,),
    ).fetchall()
    return time.perf_counter() - t0, len(result)


def open_hub_db(path: Path) -> SqliteDb:
    hub_db = connect(path)  # the hub's own schema
    db = hub_db.conn
    db.execute("PRAGMA journal_mode = OFF")  # a throw-away database: no rollback needed
    db.execute("PRAGMA synchronous = OFF")
    return hub_db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offices", type=int, default=1500)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--templates", type=int, default=40)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--period", default="2025-06")
    args = parser.parse_args()
    periods = months(args.months)
    if args.period not in periods:
        parser.error(f"--period must be one of the built months {periods[0]}..{periods[-1]}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hub.db"
        hub_db = open_hub_db(path)
        t0 = time.perf_counter()
        rows = build(hub_db.conn, args.offices, args.months, args.templates, args.seed)
        for other in periods:
            if other != args.period:
                publish(hub_db, other, cutoff=1, now=1)
        print(
            f"built {args.offices} offices x {args.months} months: {rows:,} cell rows "
            f"({rows / (args.offices * args.months):,.0f} per report), other months published, "
            f"{path.stat().st_size / 2**20:,.0f} MiB, {time.perf_counter() - t0:.1f} s"
        )
        t0 = time.perf_counter()
        published = publish(hub_db, args.period, cutoff=1, now=1)
        publish_time = time.perf_counter() - t0
        sums = hub_db.execute(
            "SELECT count(*) FROM stats_published_sums WHERE period = ?", (args.period,)
        ).fetchone()[0]
        hub_db.close()

        hub_db = open_hub_db(path)
        bare_sql(hub_db.conn, args.period)  # warm the OS page cache for every contender alike
        sql_time, sql_keys = bare_sql(hub_db.conn, args.period)
        hub_db.close()
        print(
            f"period {args.period}: {published.reports:,} reports, {sql_keys:,} distinct cells, "
            f"{sums:,} sums per organisation"
        )
        print(f"bare SQL sum (ceiling):      {sql_time:8.3f} s")
        print(
            f"publish, once per period:    {publish_time:8.3f} s  "
            f"({publish_time / sql_time:.1f} x the bare sum)"
        )

        period = parse_period(args.period)
        hub_db = open_hub_db(path)  # a new connection: SQLite's page cache is empty
        work = workloads("office-0000")
        first = [run(hub_db, period, w) for w in work]
        second = [run(hub_db, period, w) for w in work]
        peaks = [peak_memory(hub_db, period, w) for w in work]
        hub_db.close()
        print(
            "ours, protected_tables + CSV once per table: pass 1 (cold), of it CSV, "
            "ratio to the bare sum, pass 2, tracemalloc peak"
        )
        for w, (cold, csv_part, lines), (warm, _, _), peak in zip(
            work, first, second, peaks, strict=True
        ):
            label = f"{w.name} ({len(w.specs)} tables, {lines:,} CSV lines)"
            print(
                f"  {label:58} {cold:7.3f} s {csv_part:6.3f} s {cold / sql_time:5.2f} x "
                f"{warm:7.3f} s {peak / 2**20:6.1f} MiB"
            )
        print(f"ratio ours (region, dataset, pass 1) / bare SQL sum: {first[0][0] / sql_time:.2f}")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        print(f"max resident set size of the process (build included): {rss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
