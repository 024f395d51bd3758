"""`mbe-hub stats status|publish`: the operator's view of publication (docs/statistics.md).

`status` lists every period with reports: published when and from how many
office reports, or when it will be; and how many reports arrived after the
numbers were fixed (they are stored and audited but count nowhere). `publish`
fixes a period that has ended before its deadline, for when every office has
reported; what arrives afterwards is late.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from hub.errors import HubError
from hub.settings import load_settings
from hub.stats.errors import StatsError
from hub.stats.periods import parse_period
from hub.stats.publication import publish_now, states
from hub.stats.store import all_periods
from hub.storage.db import open_db


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_settings(args.dir)
    db = open_db(settings.db_path, settings.database.postgres_url)
    try:
        found = sorted((parse_period(p) for p in all_periods(db)), key=lambda p: (p.end, p.kind))
        rows = states(db, settings, found)
    finally:
        db.close()
    if not rows:
        print("no statistics reports yet")
        return 0
    print(f"{'PERIOD':<9} {'STATE':<38} {'REPORTS':>7} {'LATE':>5}")
    for r in rows:
        if r.published is None:
            state, reports = f"provisional until {_when(r.publishes_at)}", "-"
        else:
            state, reports = f"published {_when(r.published.published)}", str(r.published.reports)
        print(f"{r.period:<9} {state:<38} {reports:>7} {r.late:>5}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    settings = load_settings(args.dir)
    try:
        period = parse_period(args.period)
    except StatsError as exc:
        raise HubError(f"--period: {exc}") from None
    db = open_db(settings.db_path, settings.database.postgres_url)
    try:
        held, new = publish_now(db, period, settings, int(time.time()))
    except StatsError as exc:
        raise HubError(str(exc)) from None
    finally:
        db.close()
    if new:
        print(
            f"{period.id} published from {held.reports} office report(s); later ones count nowhere"
        )
    else:
        print(f"{period.id} was already published on {_when(held.published)}; nothing changed")
    return 0


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], directory: Callable[[str], Path]
) -> None:
    """Add `stats status` and `stats publish` to the `mbe-hub` parser."""
    stats = sub.add_parser("stats", help="publication of statistics periods").add_subparsers(
        dest="stats_command", metavar="ACTION", required=True
    )
    p = stats.add_parser("status", help="periods: published or provisional, late reports")
    p.add_argument("--dir", type=directory, required=True)
    p.set_defaults(func=cmd_status)
    p = stats.add_parser("publish", help="publish an ended period now, before its deadline")
    p.add_argument("--dir", type=directory, required=True)
    p.add_argument("--period", required=True, help="e.g. 2026-11, 2026-Q4, 2026")
    p.set_defaults(func=cmd_publish)
