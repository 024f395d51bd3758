"""Group commit on the hub's database thread (`DbWorker.run_durable`, issue 11).

Uploads that wait while the thread is busy share one durable transaction and
one fsync; each caller hears its result only after that COMMIT, a caller's
failure undoes its own writes only, and a transaction that fails as a whole
stores nothing and answers nobody "done".

The writer thread is held by a job waiting on an event, so the callers queue
up behind it deterministically; statements are seen through a stand-in for
the connection, as in test_disk_full.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from hub.errors import StorageFull
from hub.storage.db import DbWorker, connect
from hub.storage.engine import Db
from tests.hub.engines import sqlite_db


class Watched:
    """The connection, recording every statement; COMMIT fails while `fail_commit` is set."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.statements: list[str] = []
        self.fail_commit = False

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        self.statements.append(sql)
        if sql == "COMMIT" and self.fail_commit:
            raise sqlite3.OperationalError("disk I/O error")
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Any]) -> sqlite3.Cursor:
        self.statements.append(sql)
        return self._conn.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def count(self, sql: str) -> int:
        return self.statements.count(sql)


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[DbWorker]:
    db = connect(tmp_path / "hub.db")
    db.execute("CREATE TABLE t (x INTEGER NOT NULL)")
    w = DbWorker(db)
    yield w
    w.close()


def _watch(worker: DbWorker) -> Watched:
    watched = Watched(sqlite_db(worker).conn)
    sqlite_db(worker).conn = watched  # type: ignore[assignment]  # a stand-in with the methods used
    return watched


def _insert(db: Db, x: int) -> int:
    db.execute("INSERT INTO t (x) VALUES (?)", (x,))
    return x


def _insert_then_refuse(db: Db, x: int) -> int:
    db.execute("INSERT INTO t (x) VALUES (?)", (x,))
    raise LookupError(f"refused {x}")


def _stored(worker: DbWorker) -> list[int]:
    with sqlite3.connect(sqlite_db(worker).execute("PRAGMA database_list").fetchone()[2]) as conn:
        return [r[0] for r in conn.execute("SELECT x FROM t ORDER BY x")]


def _call(worker: DbWorker, fn: Callable[[Db, int], int], x: int) -> Callable[[], Awaitable[int]]:
    return lambda: worker.run_durable(fn, x)


async def _queued_behind_a_busy_thread(
    worker: DbWorker, calls: list[Callable[[], Awaitable[int]]]
) -> list[int | BaseException]:
    """Start `calls` while the writer thread is busy, then let it go; their outcomes."""
    gate = threading.Event()
    busy = asyncio.ensure_future(worker.run(lambda _db: gate.wait(30)))
    tasks = [asyncio.ensure_future(call()) for call in calls]
    await asyncio.sleep(0)  # each task runs up to its wait for the group commit
    gate.set()
    assert await busy
    return list(await asyncio.gather(*tasks, return_exceptions=True))


async def test_callers_waiting_together_share_one_commit(worker: DbWorker) -> None:
    watched = _watch(worker)
    outcomes = await _queued_behind_a_busy_thread(
        worker, [_call(worker, _insert, x) for x in (1, 2, 3)]
    )
    assert outcomes == [1, 2, 3]
    assert watched.count("BEGIN IMMEDIATE") == 1
    assert watched.count("COMMIT") == 1
    assert watched.statements[0] == "PRAGMA synchronous=FULL"
    assert _stored(worker) == [1, 2, 3]


async def test_nobody_hears_done_before_the_commit(worker: DbWorker) -> None:
    """The COMMIT fails: every caller of the group gets the error, nothing is stored."""
    watched = _watch(worker)
    watched.fail_commit = True
    outcomes = await _queued_behind_a_busy_thread(
        worker, [_call(worker, _insert, x) for x in (1, 2)]
    )
    assert [type(o) for o in outcomes] == [sqlite3.OperationalError] * 2
    assert not watched.in_transaction
    assert _stored(worker) == []
    # The next group commits as usual.
    watched.fail_commit = False
    assert await worker.run_durable(_insert, 4) == 4
    assert _stored(worker) == [4]


async def test_a_refused_caller_undoes_only_its_own_writes(worker: DbWorker) -> None:
    _watch(worker)
    outcomes = await _queued_behind_a_busy_thread(
        worker,
        [
            _call(worker, _insert, 1),
            _call(worker, _insert_then_refuse, 2),
            _call(worker, _insert, 3),
        ],
    )
    assert outcomes[0] == 1
    assert isinstance(outcomes[1], LookupError)
    assert outcomes[2] == 3
    assert _stored(worker) == [1, 3]


def _end_the_transaction(db: Db, x: int) -> int:
    """As SQLite does on some errors (SQLITE_FULL, I/O): the whole transaction is gone."""
    db.execute("INSERT INTO t (x) VALUES (?)", (x,))
    db.execute("ROLLBACK")
    raise sqlite3.OperationalError("database or disk is full")


async def test_a_transaction_sqlite_ended_fails_the_whole_group(worker: DbWorker) -> None:
    _watch(worker)
    outcomes = await _queued_behind_a_busy_thread(
        worker,
        [
            _call(worker, _insert, 1),
            _call(worker, _end_the_transaction, 2),
            _call(worker, _insert, 3),
        ],
    )
    # Disk full for all three (a 507 each: the nodes send again), nothing stored,
    # and the caller that came after the failure did not run on its own.
    assert [type(o) for o in outcomes] == [StorageFull] * 3
    assert _stored(worker) == []


async def test_groups_are_bounded(worker: DbWorker) -> None:
    watched = _watch(worker)
    worker.max_group = 2
    outcomes = await _queued_behind_a_busy_thread(
        worker, [_call(worker, _insert, x) for x in range(5)]
    )
    assert outcomes == [0, 1, 2, 3, 4]
    assert watched.count("COMMIT") == 3
    assert _stored(worker) == [0, 1, 2, 3, 4]


async def test_reads_use_a_connection_that_cannot_write(worker: DbWorker) -> None:
    def write_attempt(db: Db) -> None:
        db.execute("INSERT INTO t (x) VALUES (1)")

    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await worker.read(write_attempt)
    await worker.run_durable(_insert, 7)
    assert await worker.read(lambda db: [r[0] for r in db.execute("SELECT x FROM t")]) == [7]
