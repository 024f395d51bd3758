"""Periodic jobs shared by several hub processes: each runs once per interval.

Every hub process runs the same background loops (maintenance, statistics
publication). On one database they must not all do the same work: two
processes expiring the same messages would each queue a notice to the sender.
Before a pass, a process claims the job with one conditional UPDATE of
`job_runs` (migration 0010): it wins when the job's last start is at least
`CLAIM_SHARE` of an interval ago, and the row then holds its start. Two
processes claiming at once both run the UPDATE; the database lets one
through (SQLite's write lock; on PostgreSQL the second waits for the first's
commit and then finds the condition false), so exactly one of them runs the
pass. A process that dies in a pass leaves the row as it was; the next claim
one interval later runs the job again, in whichever process is alive.

The share below 1 lets a loop whose sleep ends a little early still claim
its own next pass, so the processes do not take turns by accident.
"""

from __future__ import annotations

from hub.storage.db import write
from hub.storage.engine import Db

CLAIM_SHARE = 0.9


def claim(db: Db, name: str, interval: float, now: int) -> bool:
    """Whether this process runs job `name` now (and records that it does)."""
    with write(db, durable=False):
        db.execute(
            "INSERT INTO job_runs (name, last_run) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (name, now - int(interval) - 1),
        )
        cur = db.execute(
            "UPDATE job_runs SET last_run = ? WHERE name = ? AND last_run <= ?",
            (now, name, now - int(interval * CLAIM_SHARE)),
        )
        return cur.rowcount == 1
