"""A full disk at the hub (issue 10, item 8): writes are refused as `507 storage-full`
with Retry-After, logged once a minute without a traceback, while what is stored
keeps moving (inbox, ack, directory, push) and a replayed request is still refused.

The full disk is injected between the DbWorker and its SQLite connection
(`FullDisk`): write statements (or the COMMIT) raise SQLite's own error, as
they do when the file system has no room. One test fills a real database with
`PRAGMA max_page_count`, so SQLite itself reports SQLITE_FULL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from hub.auth import NonceMemory
from hub.context import DB, NONCES
from hub.errors import StorageFull
from hub.storage.db import DiskFullLog, disk_full
from protocol.encoding import pack
from protocol.envelope import Envelope
from protocol.requests import SignedRequest
from tests.hub.client import Node, problem_kind, referral
from tests.hub.conftest import Hub
from tests.hub.engines import sqlite_db

# SQLite file damage and SQLITE_FULL: what only the SQLite engine has (PostgreSQL keeps
# its own checks, and its full disk is the server's; docs/operations.md).
pytestmark = pytest.mark.sqlite_only

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class FullDisk:
    """The hub's connection, with writes failing as on a full disk while `full` is set.

    `fail` names the statements that need room (a real full disk in WAL mode
    fails any of them once the WAL cannot grow; inserts are the first to).
    With `at_commit`, the statements pass and the COMMIT fails, leaving the
    transaction open, as SQLite may.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.full = False
        self.fail: tuple[str, ...] = WRITES
        self.at_commit = False
        self._dirty = False

    def _check(self, sql: str) -> None:
        verb = sql.lstrip().split(None, 1)[0].upper()
        if verb in ("BEGIN", "ROLLBACK"):
            self._dirty = False
        if not self.full:
            return
        if verb in self.fail:
            if not self.at_commit:
                raise sqlite3.OperationalError("database or disk is full")
            self._dirty = True
        if verb in ("COMMIT", "END") and self._dirty:
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        self._check(sql)
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Any]) -> sqlite3.Cursor:
        rows = list(rows)
        if rows:  # SQLite writes nothing for no rows
            self._check(sql)
        return self._conn.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@contextmanager
def full_disk(hub: Hub, **kw: Any) -> Iterator[FullDisk]:
    db = sqlite_db(hub.app[DB])
    real = db.conn
    disk = FullDisk(real)
    for name, value in kw.items():
        setattr(disk, name, value)
    db.conn = disk  # type: ignore[assignment]  # a stand-in with the methods the hub calls
    disk.full = True
    try:
        yield disk
    finally:
        db.conn = real


def _env(sender: Node, recipient: Node, hub: Hub) -> bytes:
    return referral(sender, recipient.node_id, recipient.keys.public, now=hub.clock.now()).encode()


def _no_traceback(logs: list[MutableMapping[str, Any]]) -> None:
    events = [e["event"] for e in logs]
    assert "http.internal_error" not in events
    assert "http.problem" not in events
    assert not [e for e in logs if e.get("exc_info")]


async def _refused_full(resp: Any) -> None:
    assert resp.status == 507, await resp.text()
    assert resp.headers["Retry-After"] == "30"
    assert problem_kind(await resp.json()) == "storage-full"


@pytest.mark.parametrize("at_commit", [False, True], ids=["statement", "commit"])
async def test_upload_on_a_full_disk_is_507_with_retry_after_logged_once(
    hub: Hub, at_commit: bool
) -> None:
    a, b = await hub.node("Office A"), await hub.node("Office B")
    envs = [_env(a, b, hub) for _ in range(3)]
    with capture_logs() as logs, full_disk(hub, at_commit=at_commit):
        for env in envs:
            resp = await hub.client(a).signed("POST", "/v1/messages", pack({"envelopes": [env]}))
            await _refused_full(resp)
    _no_traceback(logs)
    full = [e for e in logs if e["event"] == "storage.full"]
    assert len(full) == 1
    assert full[0]["log_level"] == "warning"
    # Nothing of a refused upload was stored; with room again the same upload goes
    # through at once (a COMMIT that failed left no transaction open).
    assert (await hub.client(b).fetch())["messages"] == []
    ans = await hub.client(a).upload(envs)
    assert ans["accepted"] == [Envelope.decode(e).msg_id for e in envs]


async def test_stored_mail_keeps_moving_while_writes_fail(hub: Hub) -> None:
    """Inbox, ack, directory and push need no write but the nonce, held in memory."""
    a, b = await hub.node("Office A"), await hub.node("Office B")
    env = _env(a, b, hub)
    await hub.client(a).upload([env])
    # Inserts need room, the delete of an ack frees it (and may succeed: WAL pages).
    with capture_logs() as logs, full_disk(hub, fail=("INSERT",)):
        resp = await hub.client(a).signed(
            "POST", "/v1/messages", pack({"envelopes": [_env(a, b, hub)]})
        )
        await _refused_full(resp)
        resp = await hub.client(b).signed("GET", "/v1/directory")
        assert resp.status == 200
        ws = await hub.client(b).ws()
        assert (await ws.receive_json(timeout=5))["type"] == "mail"
        await ws.close()
        page = await hub.client(b).fetch()
        assert [m["envelope"] for m in page["messages"]] == [env]
        assert await hub.client(b).ack([page["messages"][0]["id"]]) == 1
        assert (await hub.client(b).fetch())["messages"] == []
        held = len(hub.app[NONCES])
    assert held == 5  # directory, ws, fetch, ack, fetch
    _no_traceback(logs)
    assert [e["event"] for e in logs].count("auth.nonces_in_memory") == 1


async def test_ack_is_tried_and_507_when_even_a_delete_fails(hub: Hub) -> None:
    a, b = await hub.node("Office A"), await hub.node("Office B")
    env = _env(a, b, hub)
    await hub.client(a).upload([env])
    msg_id = Envelope.decode(env).msg_id
    with full_disk(hub, at_commit=True):
        resp = await hub.client(b).signed("POST", "/v1/inbox/ack", pack({"ids": [msg_id]}))
        await _refused_full(resp)
        assert len((await hub.client(b).fetch())["messages"]) == 1
    assert await hub.client(b).ack([msg_id]) == 1


async def test_a_replay_is_refused_while_full_and_after(hub: Hub) -> None:
    """Nonces held in memory refuse a replay, and are written once there is room."""
    b = await hub.node("Office B")
    client = hub.client(b)
    path = "/v1/inbox?after=0&limit=10"
    headers = client.headers("GET", path)
    with full_disk(hub):
        first = await hub.http.get(path, headers=headers)
        assert first.status == 200
        again = await hub.http.get(path, headers=headers)
        assert again.status == 401
        assert problem_kind(await again.json()) == "replayed-nonce"
    assert len(hub.app[NONCES]) == 1
    # Room again: the next request writes the held nonce too, and memory empties.
    with capture_logs() as logs:
        await client.fetch()
    assert [e["event"] for e in logs].count("auth.nonces_persisted") == 1
    assert len(hub.app[NONCES]) == 0
    stored = (
        sqlite_db(hub.app[DB])
        .execute("SELECT 1 FROM nonces WHERE nonce = ?", (headers["X-MBE-Nonce"],))
        .fetchone()
    )
    assert stored is not None
    again = await hub.http.get(path, headers=headers)
    assert again.status == 401
    assert problem_kind(await again.json()) == "replayed-nonce"


async def test_a_nonce_written_before_the_disk_filled_is_refused_too(hub: Hub) -> None:
    b = await hub.node("Office B")
    path = "/v1/inbox?after=0&limit=10"
    headers = hub.client(b).headers("GET", path)
    assert (await hub.http.get(path, headers=headers)).status == 200
    with full_disk(hub):
        again = await hub.http.get(path, headers=headers)
    assert again.status == 401
    assert problem_kind(await again.json()) == "replayed-nonce"


async def test_a_really_full_database_is_storage_full(hub: Hub) -> None:
    """SQLite's own SQLITE_FULL (the database may not grow), not an injected error."""
    a, b = await hub.node("Office A"), await hub.node("Office B")
    conn = sqlite_db(hub.app[DB]).conn
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count={int(pages)}")
    try:
        envs = [_env(a, b, hub) for _ in range(20)]
        with capture_logs() as logs:
            resp = await hub.client(a).signed("POST", "/v1/messages", pack({"envelopes": envs}))
            await _refused_full(resp)
            # What needs no room still works.
            assert (await hub.client(b).fetch())["messages"] == []
        _no_traceback(logs)
    finally:
        conn.execute("PRAGMA max_page_count=4294967294")
    assert len((await hub.client(a).upload(envs))["accepted"]) == 20


def test_disk_full_recognises_sqlite_and_os_errors() -> None:
    assert disk_full(sqlite3.OperationalError("database or disk is full"))
    assert disk_full(OSError(28, "No space left on device"))
    assert not disk_full(sqlite3.OperationalError("database is locked"))
    assert not disk_full(OSError(13, "Permission denied"))
    assert not disk_full(ValueError("database or disk is full"))


def test_disk_full_log_is_once_per_interval() -> None:
    now = [0.0]
    full = DiskFullLog(interval=60.0, clock=lambda: now[0])
    with capture_logs() as logs:
        for _ in range(5):
            full.note("upload")
        now[0] = 61.0
        full.note("ack")
    assert [(e["event"], e["failures"], e["operation"]) for e in logs] == [
        ("storage.full", 1, "upload"),
        ("storage.full", 5, "ack"),
    ]


def _signed(nonce: str, ts: int) -> SignedRequest:
    return SignedRequest(node_id="n" * 26, timestamp=ts, nonce=nonce, signature=b"")


def test_nonce_memory_forgets_after_the_window_and_is_bounded() -> None:
    memory = NonceMemory(max_skew=300, limit=2)
    with structlog.testing.capture_logs():
        memory.hold(_signed("a", 1000), now=1000)
        memory.hold(_signed("b", 1000), now=1000)
        with pytest.raises(StorageFull):
            memory.hold(_signed("c", 1000), now=1000)
        assert memory.holds(_signed("a", 1000))
        # Twice the skew later the clock check refuses them; memory lets them go.
        memory.hold(_signed("c", 1700), now=1700)
    assert len(memory) == 1
