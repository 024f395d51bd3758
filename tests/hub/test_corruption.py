"""A damaged hub database (issue 10, item 9; docs/hub.md, "Corruption").

Bytes flipped inside a stored envelope, an unreadable row, acks that fail for
one row, a failing `PRAGMA quick_check`: the damaged message never reaches
the recipient, its sender gets a notice, the rest of the queue is delivered
and acknowledged, and /health and /metrics say what happened.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient
from structlog.testing import capture_logs

from hub import maintenance
from hub.app import create_app
from hub.context import DB
from hub.storage.db import connect
from hub.storage.engine import SqliteDb
from hub.storage.integrity import is_corruption, quick_check
from protocol.envelope import Envelope, open_envelope
from protocol.ids import HUB_ID
from protocol.payloads import ExpiryNotice
from tests.clocks import clocked
from tests.hub.client import Node, referral
from tests.hub.conftest import Hub
from tests.hub.engines import sqlite_db

# SQLite file damage and SQLITE_FULL: what only the SQLite engine has (PostgreSQL keeps
# its own checks, and its full disk is the server's; docs/operations.md).
pytestmark = pytest.mark.sqlite_only

PAGE = 4096


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the database file, as a stopped hub leaves it."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def _restart(hub: Hub, client: AiohttpClient, damage: Callable[[bytearray], None]) -> Hub:
    """Stop the hub, change its database file with `damage`, start it again."""
    await hub.http.close()
    path = hub.settings.db_path
    _checkpoint(path)
    data = bytearray(path.read_bytes())
    damage(data)
    path.write_bytes(bytes(data))
    app = create_app(hub.settings, deps=clocked(hub.clock))
    return Hub(hub.settings, hub.clock, app, await client(app))


def _flip_inside(blob: bytes) -> Callable[[bytearray], None]:
    """Flip four bytes in the middle of `blob` where it is stored in the file."""

    def damage(data: bytearray) -> None:
        at = data.find(blob[len(blob) // 2 : len(blob) // 2 + 32])
        assert at > 0, "the envelope is stored in one piece"
        for i in range(at + 8, at + 12):
            data[i] ^= 0xFF

    return damage


def _break_overflow_chain(blob: bytes) -> Callable[[bytearray], None]:
    """Point the first overflow page of a large stored envelope to a page that does not exist."""

    def damage(data: bytearray) -> None:
        at = data.find(blob[2000:2032])
        assert at > 0
        page = at // PAGE * PAGE
        assert int.from_bytes(data[page : page + 4], "big") != 0, "an overflow page with a next"
        data[page : page + 4] = (0x7FFFFF).to_bytes(4, "big")

    return damage


def _open_notices(hub: Hub, node: Node, page: dict[str, Any]) -> list[ExpiryNotice]:
    out = []
    for m in page["messages"]:
        env = Envelope.decode(m["envelope"])
        assert env.sender == HUB_ID
        inner = open_envelope(env, node.keys, node.node_id, node.hub_keys, now=hub.clock.now())
        assert isinstance(inner.payload, ExpiryNotice)
        out.append(inner.payload)
    return out


async def _health(hub: Hub) -> tuple[int, dict[str, Any]]:
    resp = await hub.http.get("/health")
    body: dict[str, Any] = await resp.json()
    return resp.status, body


async def _metrics(hub: Hub) -> str:
    return await (await hub.http.get("/metrics")).text()


async def test_flipped_bytes_in_an_envelope_are_not_relayed_and_the_sender_is_told(
    hub: Hub, aiohttp_client: AiohttpClient
) -> None:
    a, b = await hub.node("Sender Office"), await hub.node("Recipient Office")
    envs = [referral(a, b.node_id, b.keys.public, now=hub.clock.now()) for _ in range(3)]
    await hub.client(a).upload([e.encode() for e in envs])
    hub = await _restart(hub, aiohttp_client, _flip_inside(envs[1].encode()))

    with capture_logs() as logs:
        page = await hub.client(b).fetch()
    assert [m["id"] for m in page["messages"]] == [envs[0].msg_id, envs[2].msg_id]
    for m, env in zip(page["messages"], [envs[0], envs[2]], strict=True):
        assert m["envelope"] == env.encode()
    assert await hub.client(b).ack([envs[0].msg_id, envs[2].msg_id]) == 2
    assert (await hub.client(b).fetch())["messages"] == []

    notices = _open_notices(hub, a, await hub.client(a).fetch())
    assert notices == [
        ExpiryNotice(of_msg_id=envs[1].msg_id, recipient=b.node_id, expired=hub.clock.now())
    ]
    event = next(e for e in logs if e["event"] == "relay.damaged")
    assert event["log_level"] == "error"
    assert event["msg_id"] == envs[1].msg_id
    with contextlib.closing(sqlite3.connect(hub.settings.db_path)) as conn:
        row = conn.execute("SELECT expired FROM relay_log WHERE msg_id = ?", (envs[1].msg_id,))
        assert row.fetchone() == (hub.clock.now(),)

    # The file's structure is sound (quick_check passes), the damage is known all the same.
    status, body = await _health(hub)
    assert status == 503
    assert body["status"] == "corrupt"
    assert body["database"]["problems"] == 0
    assert body["database"]["damaged_envelopes"] == 1
    text = await _metrics(hub)
    assert "mbe_hub_db_ok 0\n" in text
    assert "mbe_hub_damaged_envelopes_total 1\n" in text


async def test_a_hash_damaged_in_the_queue_alone_still_delivers_the_envelope(
    hub: Hub, aiohttp_client: AiohttpClient
) -> None:
    """The metadata log keeps a second copy of the hash: an intact envelope is not dropped."""
    a, b = await hub.node("Sender Hash"), await hub.node("Recipient Hash")
    env = referral(a, b.node_id, b.keys.public, now=hub.clock.now())
    await hub.client(a).upload([env.encode()])
    with contextlib.closing(sqlite3.connect(hub.settings.db_path)) as conn:
        conn.execute("UPDATE queue SET env_hash = zeroblob(32)")
        conn.commit()
    assert [m["id"] for m in (await hub.client(b).fetch())["messages"]] == [env.msg_id]
    assert (await _health(hub))[0] == 200


async def test_an_unreadable_row_does_not_block_the_inbox(
    hub: Hub, aiohttp_client: AiohttpClient
) -> None:
    """A really broken page: the rest is delivered and acknowledged, the sender is told once."""
    a, b = await hub.node("Sender Three"), await hub.node("Recipient Three")
    now = hub.clock.now()
    small = [referral(a, b.node_id, b.keys.public, now=now) for _ in range(2)]
    large = referral(a, b.node_id, b.keys.public, now=now, note="ü" * 4000)
    sent = [small[0], large, small[1]]
    await hub.client(a).upload([e.encode() for e in sent])
    with capture_logs() as logs:
        hub = await _restart(hub, aiohttp_client, _break_overflow_chain(large.encode()))
        page = await hub.client(b).fetch()
        assert [m["id"] for m in page["messages"]] == [small[0].msg_id, small[1].msg_id]
        assert await hub.client(b).ack([small[0].msg_id, small[1].msg_id]) == 2
        assert (await hub.client(b).fetch())["messages"] == []
    assert [e["event"] for e in logs].count("relay.unreadable") == 1
    assert any(e["event"] == "db.corrupt" for e in logs)

    notices = _open_notices(hub, a, await hub.client(a).fetch())
    assert [n.of_msg_id for n in notices] == [large.msg_id]

    status, body = await _health(hub)
    assert status == 503
    assert body["database"]["unreadable_rows"] == 1
    assert body["database"]["problems"] > 0  # quick_check at start saw the broken chain
    text = await _metrics(hub)
    assert "mbe_hub_unreadable_rows 1\n" in text
    assert "mbe_hub_db_ok 0\n" in text


async def test_expiry_goes_on_around_an_unreadable_row(
    hub: Hub, aiohttp_client: AiohttpClient
) -> None:
    a, b = await hub.node("Sender Four"), await hub.node("Recipient Four")
    now = hub.clock.now()
    large = referral(a, b.node_id, b.keys.public, now=now, ttl=3600, note="ü" * 4000)
    small = referral(a, b.node_id, b.keys.public, now=now, ttl=3600)
    await hub.client(a).upload([large.encode(), small.encode()])
    hub = await _restart(hub, aiohttp_client, _break_overflow_chain(large.encode()))
    hub.clock.advance(3600)
    assert await maintenance.run_once(hub.app, hub.clock.now()) == {a.node_id}
    notices = _open_notices(hub, a, await hub.client(a).fetch())
    assert sorted(n.of_msg_id for n in notices) == sorted([large.msg_id, small.msg_id])
    # Nothing is told twice.
    hub.clock.advance(60)
    assert await maintenance.run_once(hub.app, hub.clock.now()) == set()


async def test_acks_work_for_the_rest_when_one_row_cannot_be_deleted(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await hub.node("Sender Five"), await hub.node("Recipient Five")
    envs = [referral(a, b.node_id, b.keys.public, now=hub.clock.now()) for _ in range(3)]
    await hub.client(a).upload([e.encode() for e in envs])
    bad = envs[1].msg_id
    db = sqlite_db(hub.app[DB])
    execute = db.execute

    def damaged_execute(sql: str, params: Any = ()) -> sqlite3.Cursor:
        if sql.startswith("DELETE FROM queue WHERE msg_id") and bad in params:
            raise sqlite3.DatabaseError("database disk image is malformed")
        return execute(sql, params)

    monkeypatch.setattr(db, "execute", damaged_execute)
    ids = [m["id"] for m in (await hub.client(b).fetch())["messages"]]
    assert ids == [e.msg_id for e in envs]
    assert await hub.client(b).ack(ids) == 2
    assert [m["id"] for m in (await hub.client(b).fetch())["messages"]] == [bad]
    status, body = await _health(hub)
    assert status == 503
    assert body["database"]["failed_acks"] == 1
    assert "mbe_hub_failed_acks_total 1\n" in await _metrics(hub)


async def test_quick_check_runs_hourly_and_shows_in_health_and_metrics(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, body = await _health(hub)
    assert (status, body["status"]) == (200, "ok")
    assert body["database"]["checked"] == hub.clock.now()  # at start
    assert "mbe_hub_db_ok 1\n" in await _metrics(hub)

    monkeypatch.setattr(maintenance, "quick_check", lambda db: 3)
    hub.clock.advance(60)
    await maintenance.run_once(hub.app, hub.clock.now())
    assert (await _health(hub))[0] == 200  # not due yet
    hub.clock.advance(maintenance.INTEGRITY_INTERVAL)
    with capture_logs() as logs:
        await maintenance.run_once(hub.app, hub.clock.now())
    assert {"event": "db.corrupt", "log_level": "error", "check": "quick_check", "problems": 3} in (
        logs
    )
    status, body = await _health(hub)
    assert status == 503
    assert body["database"] == {
        "checked": hub.clock.now(),
        "problems": 3,
        "damaged_envelopes": 0,
        "unreadable_rows": 0,
        "failed_acks": 0,
        "engine": "sqlite",
        "reachable": True,
    }
    text = await _metrics(hub)
    assert "mbe_hub_db_ok 0\n" in text
    assert "mbe_hub_db_check_problems 3\n" in text
    assert f"mbe_hub_db_checked_timestamp_seconds {hub.clock.now()}\n" in text


def test_quick_check_counts_the_problems_of_a_damaged_copy(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    db = connect(path)
    blob = bytes(range(256)) * 40
    db.execute(
        "INSERT INTO queue (msg_id, sender, recipient, expires, received, env_hash, envelope) "
        "VALUES ('m', 's', 'r', 1, 1, x'00', ?)",
        (blob,),
    )
    assert quick_check(db) == 0
    db.close()
    _checkpoint(path)
    data = bytearray(path.read_bytes())
    _break_overflow_chain(blob)(data)
    path.write_bytes(bytes(data))
    with contextlib.closing(sqlite3.connect(path)) as conn:
        damaged = SqliteDb(conn)
        assert quick_check(damaged) >= 1
        with pytest.raises(sqlite3.DatabaseError) as raised:
            conn.execute("SELECT envelope FROM queue").fetchall()
        assert is_corruption(raised.value)


def test_only_damage_counts_as_corruption() -> None:
    assert is_corruption(sqlite3.DatabaseError("database disk image is malformed"))
    assert not is_corruption(sqlite3.OperationalError("database is locked"))
    assert not is_corruption(sqlite3.IntegrityError("UNIQUE constraint failed"))
