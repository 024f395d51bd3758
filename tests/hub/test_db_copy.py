"""`mbe-hub db migrate --to URL`: a SQLite hub copied into PostgreSQL, row for row,
verified, refused when it cannot be done right, and served by a hub on PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pytest_aiohttp import AiohttpClient

from hub import db_copy
from hub.app import create_app
from hub.settings import HubSettings, load_settings
from hub.stats.access import start_session
from hub.stats.routes import add_stats
from hub.stats.store import publish
from hub.storage.db import connect, load_migrations
from hub.storage.jobs import claim
from protocol.documents import AuditHead
from protocol.envelope import Envelope
from support.migrations import Stamp
from support.migrations import migrate as run_migrations
from tests.clocks import clocked
from tests.hub.client import HubClient, Node, referral
from tests.hub.conftest import FakeClock
from tests.hub.proc import run_cli
from tests.stats.hubside import PERIOD, PUBLISHED, START, StatsHub, init_hub_dir, three_offices

PASSWORD = "s3cret-Pw"
# Every table but these must hold rows in the populated hub, so that a new table
# without rows in this test cannot pass unnoticed.
NOT_DATA = {"schema_version"}


@dataclass
class Source:
    """A SQLite hub, stopped, holding rows in every table."""

    settings: HubSettings
    clock: FakeClock
    a: Node
    b: Node
    queued: list[str]  # message ids waiting in b's inbox
    highest_seq: int  # the highest queue seq SQLite ever gave (one of them acked)


async def _populate(tmp_path: Path, aiohttp_client: AiohttpClient) -> Source:
    """Drive a SQLite hub through its own routes and functions until every table has rows."""
    clock = FakeClock(START)
    settings = init_hub_dir(tmp_path / "hub")
    app = create_app(settings, deps=clocked(clock), extensions=[add_stats])
    http = await aiohttp_client(app)
    hub = StatsHub(settings, clock, app, http)
    a, b, c = await three_offices(hub, publish=False)
    sent = [referral(a, b.node_id, b.keys.public, now=clock.now()) for _ in range(2)]
    await HubClient(http, a, clock).upload([env.encode() for env in sent])
    last = referral(c, b.node_id, b.keys.public, now=clock.now())
    await HubClient(http, c, clock).upload([last.encode()])
    page = await HubClient(http, b, clock).fetch()
    highest = max(m["seq"] for m in page["messages"])
    assert await HubClient(http, b, clock).ack([last.msg_id]) == 1
    head = AuditHead(a.node_id, hashlib.sha256(b"head").hexdigest(), clock.now()).sign(a.keys)
    assert (await HubClient(http, a, clock).signed("POST", "/v1/audit/head", head)).status == 200
    token = hub.token("Caritas")
    await http.close()  # the hub stops before the copy

    db = connect(settings.db_path)
    try:
        assert start_session(db, token, os.urandom(16).hex(), clock.now(), 3600) is not None
        publish(db, PERIOD, cutoff=PUBLISHED, now=PUBLISHED)
        assert claim(db, "maintenance", 60.0, clock.now())
    finally:
        db.close()
    empty = [name for name, (_, rows) in _sqlite_tables(settings.db_path).items() if not rows]
    assert empty == [], "populate these tables too"
    return Source(settings, clock, a, b, [env.msg_id for env in sent], highest)


def _sqlite_tables(path: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every hub table of the SQLite file: its columns and rows, read plainly."""
    conn = sqlite3.connect(path)
    try:
        names = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not name.startswith("sqlite_") and name not in NOT_DATA
        ]
        out = {}
        for name in names:
            columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')]
            query = f'SELECT {", ".join(columns)} FROM "{name}"'  # noqa: S608 -- names from the schema
            rows = conn.execute(query).fetchall()
            out[name] = (columns, rows)
        return out
    finally:
        conn.close()


def _pg_rows(url: str, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
        )
        return conn.execute(query).fetchall()


def _pg_dump(url: str) -> dict[str, list[str]]:
    """Every table's rows and every sequence's position in the database at `url`."""
    with psycopg.connect(url) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]
        every_row = sql.SQL("SELECT * FROM {}")
        out = {
            name: sorted(map(repr, conn.execute(every_row.format(sql.Identifier(name)))))
            for name in tables
        }
        sequences = conn.execute("SELECT sequencename, last_value FROM pg_sequences").fetchall()
        out["(sequences)"] = sorted(map(repr, sequences))
        return out


def _with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


def _one_line_error(out: Any) -> str:
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert PASSWORD not in out.stdout + out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    return str(lines[0])


async def test_every_table_is_copied_row_for_row(
    tmp_path: Path, aiohttp_client: AiohttpClient, pg_url: str
) -> None:
    """After `db migrate`, each table holds in PostgreSQL exactly the rows it holds in SQLite."""
    source = await _populate(tmp_path, aiohttp_client)
    before = source.settings.db_path.read_bytes()
    out = run_cli(
        "db", "migrate", "--dir", str(source.settings.data_dir), "--to", _with_password(pg_url)
    )
    assert out.returncode == 0, out.stderr
    assert PASSWORD not in out.stdout + out.stderr
    tables = _sqlite_tables(source.settings.db_path)
    for name, (columns, rows) in tables.items():
        assert sorted(map(repr, _pg_rows(pg_url, name, columns))) == sorted(map(repr, rows)), name
        assert f"  {name} " in out.stdout
    assert f'url = "{pg_url}"' in out.stdout  # what to put in hub.toml, without the password
    assert source.settings.db_path.read_bytes() == before


async def test_a_hub_on_postgresql_serves_the_copied_queue(
    tmp_path: Path, aiohttp_client: AiohttpClient, pg_url: str
) -> None:
    """A hub started on the copy delivers what was queued before it, and numbers new
    uploads past every seq SQLite gave, the acked one included."""
    source = await _populate(tmp_path, aiohttp_client)
    db_copy.migrate(source.settings.db_path, pg_url)
    config = source.settings.data_dir / "hub.toml"
    config.write_text(config.read_text() + f'\n[database]\nurl = "{pg_url}"\n')
    settings = load_settings(source.settings.data_dir)
    app = create_app(settings, deps=clocked(source.clock), extensions=[add_stats])
    http = await aiohttp_client(app)
    a, b = HubClient(http, source.a, source.clock), HubClient(http, source.b, source.clock)
    page = await b.fetch()
    assert [m["id"] for m in page["messages"]] == source.queued
    new = referral(source.a, source.b.node_id, source.b.keys.public, now=source.clock.now())
    assert (await a.upload([new.encode()]))["accepted"] == [new.msg_id]
    later = await b.fetch(after=page["next"])
    assert [m["id"] for m in later["messages"]] == [new.msg_id]
    assert later["messages"][0]["seq"] > source.highest_seq
    assert Envelope.decode(later["messages"][0]["envelope"]).msg_id == new.msg_id


async def test_a_second_migrate_is_refused_and_changes_nothing(
    tmp_path: Path, aiohttp_client: AiohttpClient, pg_url: str
) -> None:
    """Into a database that holds hub rows, the copy is refused, naming a table, and the
    target stays as it was."""
    source = await _populate(tmp_path, aiohttp_client)
    db_copy.migrate(source.settings.db_path, pg_url)
    before = _pg_dump(pg_url)
    out = run_cli(
        "db", "migrate", "--dir", str(source.settings.data_dir), "--to", _with_password(pg_url)
    )
    line = _one_line_error(out)
    assert "the target database is not empty" in line
    assert "queue" in line
    assert _pg_dump(pg_url) == before


def _stopped_hub(tmp_path: Path) -> HubSettings:
    settings = init_hub_dir(tmp_path / "hub")
    connect(settings.db_path).close()
    return settings


def test_a_url_that_is_not_postgresql_is_one_line(tmp_path: Path) -> None:
    """`--to mysql://...` is refused in one line, without the password."""
    settings = _stopped_hub(tmp_path)
    url = f"mysql://hub:{PASSWORD}@127.0.0.1/hub"
    line = _one_line_error(run_cli("db", "migrate", "--dir", str(settings.data_dir), "--to", url))
    assert "postgresql://" in line


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    """A database nobody listens for is one line naming it, the password left out."""
    settings = _stopped_hub(tmp_path)
    url = f"postgresql://hub:{PASSWORD}@127.0.0.1:1/hub"
    line = _one_line_error(run_cli("db", "migrate", "--dir", str(settings.data_dir), "--to", url))
    assert "cannot connect to postgresql://hub:***@127.0.0.1:1/hub" in line


def test_a_source_at_an_older_schema_is_refused(tmp_path: Path, pg_url: str) -> None:
    """A hub.db this version has not migrated yet is refused, saying how to migrate it."""
    settings = init_hub_dir(tmp_path / "hub")
    conn = sqlite3.connect(settings.db_path, isolation_level=None)
    run_migrations(conn, load_migrations()[:-1], stamp=Stamp.UNIX_SECONDS)
    conn.close()
    out = run_cli("db", "migrate", "--dir", str(settings.data_dir), "--to", pg_url)
    line = _one_line_error(out)
    assert "schema version" in line
    assert "mbe-hub site list" in line


def test_a_hub_writing_the_file_is_refused(tmp_path: Path, pg_url: str) -> None:
    """While another process holds SQLite's write lock the copy is refused, saying
    to stop the hub."""
    settings = _stopped_hub(tmp_path)
    writer = sqlite3.connect(settings.db_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(db_copy.MigrateError, match="stop the hub"):
            db_copy.migrate(settings.db_path, pg_url, busy_timeout=0.1)
    finally:
        writer.execute("ROLLBACK")
        writer.close()


async def test_a_row_changed_on_the_way_is_caught_and_rolled_back(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When a value arrives changed, verification names the table and nothing is committed."""
    source = await _populate(tmp_path, aiohttp_client)
    real = db_copy._converter

    def flipping(table: db_copy.Table) -> Any:
        convert = real(table)
        if table.name != "queue":
            return convert
        at = table.columns.index("envelope")

        def changed(row: Any) -> tuple[Any, ...]:
            out = list(convert(row))
            out[at] = bytes([out[at][0] ^ 1]) + out[at][1:]
            return tuple(out)

        return changed

    monkeypatch.setattr(db_copy, "_converter", flipping)
    with pytest.raises(db_copy.MigrateError, match="table queue differ"):
        db_copy.migrate(source.settings.db_path, pg_url)
    held = _pg_dump(pg_url)
    assert all(held[name] == [] for name in _sqlite_tables(source.settings.db_path))


def test_a_wrong_quota_counter_is_refused(tmp_path: Path, pg_url: str) -> None:
    """A queue_usage that does not add up to the queue's bytes is not carried over."""
    settings = _stopped_hub(tmp_path)
    conn = sqlite3.connect(settings.db_path, isolation_level=None)
    conn.execute("INSERT INTO queue_usage (sender, bytes) VALUES ('office-x', 99)")
    conn.close()
    with pytest.raises(db_copy.MigrateError, match="queue_usage counts 99 bytes for sender"):
        db_copy.migrate(settings.db_path, pg_url)


def test_a_table_this_version_cannot_copy_stops_the_command(tmp_path: Path, pg_url: str) -> None:
    """A table only the SQLite file has is named, not left behind."""
    settings = _stopped_hub(tmp_path)
    conn = sqlite3.connect(settings.db_path, isolation_level=None)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    conn.close()
    with pytest.raises(db_copy.MigrateError, match="only in the SQLite file: notes"):
        db_copy.migrate(settings.db_path, pg_url)


def test_a_value_of_another_type_than_its_column_is_refused(tmp_path: Path, pg_url: str) -> None:
    """Text where PostgreSQL has bytea is named and refused, never reinterpreted."""
    settings = _stopped_hub(tmp_path)
    conn = sqlite3.connect(settings.db_path, isolation_level=None)
    conn.execute(
        "INSERT INTO directory_versions (version, issued, expires, data) VALUES (1, 1, 2, 'text')"
    )
    conn.close()
    with pytest.raises(db_copy.MigrateError, match=r"directory_versions\.data holds a str"):
        db_copy.migrate(settings.db_path, pg_url)
    assert _pg_dump(pg_url)["directory_versions"] == []
