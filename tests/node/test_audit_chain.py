"""The tamper-evident audit log (issue 9, item 4): `mbe-node audit verify` on real
SQLite files finds deleted, edited, reordered and truncated entries; truncation
that also resets the counter is found through the head the hub holds."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpServer

from node.api.status_page import render
from node.audit import send_head
from node.cli import main
from node.clock import Deps
from node.config import NodeSettings, load_keys, load_settings
from node.datadir import init_data_dir
from node.domain.audit_chain import GENESIS, entry_hash
from node.jobs.audit_head import AuditHeadJob
from node.storage.db import migrations
from node.storage.store import NodeStore
from node.sync.enroll import enroll
from protocol.documents import AuditHead
from support.migrations import Stamp
from support.migrations import migrate as run_migrations
from tests.node.conftest import keys_from
from tests.sync.fakehub import FakeHub
from tests.sync.helpers import fast_settings

CASE_A, CASE_B = "a" * 32, "b" * 32
APP = "beratungs-app"


def _open(settings: NodeSettings) -> NodeStore:
    return NodeStore.open(
        settings.db_path, load_keys(settings.key_path), Deps.system(), message_ttl=86400
    )


def _write_entries(store: NodeStore) -> None:
    store.access.create_token(APP)
    store.access.audit(APP, "case.create", case_id=CASE_A, actor="u1")
    store.access.audit(APP, "case.read", case_id=CASE_A, actor="u1")
    store.access.audit_many(APP, [("case.list", CASE_A, None), ("case.list", CASE_B, None)])
    store.access.audit(APP, "case.update", case_id=CASE_B, actor="u2")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A node (not enrolled) with 6 audit entries."""
    path = tmp_path / "caritas-nbg"
    init_data_dir(path, "Caritas Nürnberg", keys=keys_from("caritas-nbg"))
    store = _open(load_settings(path))
    try:
        _write_entries(store)
    finally:
        store.close()
    return path


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """The database as a tamperer with write access sees it."""
    conn = sqlite3.connect(path / "node.db", isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def verify(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["audit", "verify", "--dir", str(path)])
    return code, capsys.readouterr().out


async def averify(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`audit verify` from an async test: asyncio.run needs a thread of its own."""
    code = await asyncio.to_thread(main, ["audit", "verify", "--dir", str(path)])
    return code, capsys.readouterr().out


def test_an_untouched_log_is_intact(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = verify(data_dir, capsys)
    assert code == 0, out
    assert "Audit log: intact (6 entries)" in out
    assert "not enrolled" in out


def test_a_deleted_entry_is_found(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with raw(data_dir) as conn:
        conn.execute("DELETE FROM audit WHERE seq = 3")
    code, out = verify(data_dir, capsys)
    assert code == 1
    assert "BROKEN at entry 3" in out
    assert "deleted" in out


def test_an_edited_entry_is_found(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with raw(data_dir) as conn:
        conn.execute("UPDATE audit SET actor = 'u9' WHERE seq = 4")
    code, out = verify(data_dir, capsys)
    assert code == 1
    assert "BROKEN at entry 4" in out
    assert "edited or reordered" in out


def test_reordered_entries_are_found(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Swapping two entries with their hashes (or renumbering them) breaks the chain."""
    with raw(data_dir) as conn:
        conn.execute("UPDATE audit SET seq = 100 WHERE seq = 2")
        conn.execute("UPDATE audit SET seq = 2 WHERE seq = 3")
        conn.execute("UPDATE audit SET seq = 3 WHERE seq = 100")
    code, out = verify(data_dir, capsys)
    assert code == 1
    assert "BROKEN at entry 2" in out
    assert "edited or reordered" in out


def test_a_removed_hash_is_a_break_and_is_not_chained_again(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with raw(data_dir) as conn:
        conn.execute("UPDATE audit SET hash = NULL WHERE seq >= 5")
        # Only the chain's start marker tells legacy entries apart; it stays.
    code, out = verify(data_dir, capsys)  # opens the store: no re-chaining happens
    assert code == 1
    assert "BROKEN at entry 5" in out
    assert "hash removed" in out


def test_a_rechained_log_after_an_edit_is_found_by_its_start(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deleting the oldest entries and re-hashing the rest from the genesis is found:
    the chain's start is recorded."""
    with raw(data_dir) as conn:
        conn.execute("DELETE FROM audit WHERE seq = 1")
        previous = GENESIS
        cols = "seq, at, app, actor, action, case_id, referral_id"
        for row in conn.execute(f"SELECT {cols} FROM audit ORDER BY seq").fetchall():  # noqa: S608
            entry = dict(zip(cols.split(", "), row, strict=True))
            previous = entry_hash(previous, entry)
            conn.execute("UPDATE audit SET hash = ? WHERE seq = ?", (previous, entry["seq"]))
    code, out = verify(data_dir, capsys)
    assert code == 1
    assert "BROKEN at entry 1" in out


def test_deleting_the_newest_entries_is_found_by_the_counter(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with raw(data_dir) as conn:
        conn.execute("DELETE FROM audit WHERE seq >= 5")
    code, out = verify(data_dir, capsys)
    assert code == 1
    assert "BROKEN at entry 5" in out
    assert "newest entries were deleted" in out


def test_new_entries_after_a_truncation_leave_a_gap(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with raw(data_dir) as conn:
        conn.execute("DELETE FROM audit WHERE seq >= 5")
    store = _open(load_settings(data_dir))
    try:
        store.access.audit(APP, "case.read", case_id=CASE_A)
        assert store.access.chain.newest(limit=1)[0]["seq"] == 7
    finally:
        store.close()
    code, out = verify(data_dir, capsys)
    assert code == 1
    assert "BROKEN at entry 5" in out


def test_the_upgrade_chains_old_entries_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database from before migration 0008: its entries are chained on first open."""
    path = tmp_path / "old-node"
    init_data_dir(path, "Altes Büro", keys=keys_from("awo-fue"))
    (path / "node.db").unlink()
    conn = sqlite3.connect(path / "node.db", isolation_level=None)
    try:
        run_migrations(conn, migrations()[:7], stamp=Stamp.UTC_DATETIME)
        conn.executemany(
            "INSERT INTO audit (at, app, action, case_id) VALUES (?, ?, ?, ?)",
            [(1_700_000_000 + i, APP, "case.read", CASE_A) for i in range(5)],
        )
        assert "hash" not in [r[1] for r in conn.execute("PRAGMA table_info(audit)")]
    finally:
        conn.close()
    store = _open(load_settings(path))
    try:
        assert store.access.chain.verify(full=True).entries == 5
        store.access.audit(APP, "case.update", case_id=CASE_A, actor="u1")
        verdict = store.access.chain.verify(full=True)
        assert verdict.intact
        assert verdict.entries == 6
    finally:
        store.close()
    with raw(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM audit WHERE hash IS NULL").fetchone() == (0,)
        assert conn.execute("SELECT first_seq, legacy_until FROM audit_chain").fetchone() == (
            1,
            None,
        )
        conn.execute("UPDATE audit SET hash = NULL WHERE seq = 2")
    code, out = verify(path, capsys)
    assert code == 1
    assert "BROKEN at entry 2" in out


def test_show_prints_entries(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "show", "--dir", str(data_dir), "--case", CASE_B]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["SEQ", "AT", "APP", "ACTOR", "ACTION", "CASE", "REFERRAL"]
    assert [line.split()[4] for line in out[1:]] == ["case.list", "case.update"]
    assert out[-1].split()[3] == "u2"
    assert main(["audit", "show", "--dir", str(data_dir), "--limit", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[1:]] == ["5", "6"]


def test_status_shows_the_chain(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "intact (6 entries), no head confirmed by the hub yet" in out
    with raw(data_dir) as conn:
        conn.execute("UPDATE audit SET action = 'case.read' WHERE seq = 6")
    assert main(["status", "--dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "BROKEN at entry 6" in out
    assert "audit_broken" in out


# ------------------------------------------------------------- the hub's head


async def _enrolled(path: Path, aiohttp_server: AiohttpServer) -> tuple[FakeHub, NodeSettings]:
    hub = FakeHub()
    url = str((await aiohttp_server(hub.app(), host="127.0.0.1")).make_url("/")).rstrip("/")
    code = hub.add_site("caritas-nbg")
    settings = load_settings(path)
    store = _open(settings)
    try:
        await enroll(fast_settings(), store.sync, store.ctx.keys, url, code)
    finally:
        store.close()
    return hub, settings


async def _send(settings: NodeSettings, *, force: bool = True) -> str:
    store = _open(settings)
    try:
        keys = load_keys(settings.key_path)
        return await send_head(store, settings, keys, Deps.system(), full=True, force=force)
    finally:
        store.close()


async def test_truncation_is_found_through_the_hub(
    data_dir: Path, aiohttp_server: AiohttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _hub, settings = await _enrolled(data_dir, aiohttp_server)
    code, out = await averify(data_dir, capsys)
    assert code == 2, out
    assert "holds no audit head of this node yet" in out
    assert await _send(settings) == "sent"
    assert await _send(settings, force=False) == "skipped"  # unchanged
    code, out = await averify(data_dir, capsys)
    assert code == 0, out
    assert "hub: the head signed" in out
    assert "is entry 6" in out
    # The careful tamperer deletes the newest entries and resets the counter too:
    # the rest of the chain is intact, but the hub's head is gone from it.
    with raw(data_dir) as conn:
        conn.execute("DELETE FROM audit WHERE seq >= 5")
        conn.execute("UPDATE sqlite_sequence SET seq = 4 WHERE name = 'audit'")
    code, out = await averify(data_dir, capsys)
    assert code == 1, out
    assert "Audit log: intact (4 entries)" in out
    assert "the newest entries were deleted or rewritten since" in out


async def test_an_unreachable_hub_is_said_and_exit_2(
    data_dir: Path, aiohttp_server: AiohttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    hub, settings = await _enrolled(data_dir, aiohttp_server)
    assert await _send(settings) == "sent"
    hub.outage = True
    code, out = await averify(data_dir, capsys)
    assert code == 2, out
    assert "Audit log: intact (6 entries)" in out
    assert "could not be fetched" in out
    assert "checked locally only" in out


async def test_a_broken_chain_is_not_signed(
    data_dir: Path, aiohttp_server: AiohttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    hub, settings = await _enrolled(data_dir, aiohttp_server)
    with raw(data_dir) as conn:
        conn.execute("UPDATE audit SET app = 'other' WHERE seq = 2")
    assert await _send(settings) == "broken"
    assert hub.audit_heads == {}


async def test_the_status_shows_when_the_hub_confirmed(
    data_dir: Path, aiohttp_server: AiohttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _hub, settings = await _enrolled(data_dir, aiohttp_server)
    assert await _send(settings) == "sent"
    assert await asyncio.to_thread(main, ["status", "--dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "intact (6 entries), head confirmed by the hub 20" in out


def test_the_status_page_shows_the_chain(data_dir: Path) -> None:
    store = _open(load_settings(data_dir))
    try:
        page = render(store.health(), "Caritas Nürnberg")
        assert "unversehrt (6 Einträge)" in page
        assert "Vom Hub bestätigt" in page
        # Another connection (a tamperer's tool) edits an entry already checked:
        # the next check is a full one.
        with raw(data_dir) as conn:
            conn.execute("UPDATE audit SET case_id = NULL WHERE seq = 3")
        page = render(store.health(), "Caritas Nürnberg")
        assert "BESCHÄDIGT</span> ab Eintrag 3" in page
        assert "Zugriffsprotokoll ist beschädigt" in page
    finally:
        store.close()


async def test_the_serve_job_sends_the_head_at_start_and_when_it_changed(
    data_dir: Path, aiohttp_server: AiohttpServer
) -> None:
    hub, settings = await _enrolled(data_dir, aiohttp_server)
    store = _open(settings)
    try:
        job = AuditHeadJob(store, settings, Deps.system())
        assert await job.run_once() == "sent"
        node_id = next(iter(hub.audit_heads))
        first = AuditHead.verify(hub.audit_heads[node_id], (store.ctx.keys.public,))
        assert first.hash == store.access.chain.verify().head.hash  # type: ignore[union-attr]
        assert await job.run_once() == "skipped"
        store.access.audit(APP, "case.read", case_id=CASE_A)
        assert await job.run_once() == "sent"
        second = AuditHead.verify(hub.audit_heads[node_id], (store.ctx.keys.public,))
        assert second.hash != first.hash
        assert store.access.chain.seq_of(second.hash) == 7
        held = store.access.chain.hub_head()
        assert held is not None
        assert held.hash == second.hash
    finally:
        store.close()
