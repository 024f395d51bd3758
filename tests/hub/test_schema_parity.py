"""The SQLite and PostgreSQL schemas of the hub hold the same tables and columns,
and the SQL rewrite for PostgreSQL leaves the statements' meaning alone."""

from __future__ import annotations

from pathlib import Path

from hub.storage import postgres
from hub.storage.db import connect, latest_schema, open_db, schema_version
from hub.storage.engine import POSTGRESQL, SQLITE


def _sqlite_columns(path: Path) -> dict[str, set[str]]:
    with connect(path) as db:
        tables = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {t: {r[1] for r in db.execute(f"PRAGMA table_info({t})")} for t in tables}


def _postgres_columns(url: str) -> dict[str, set[str]]:
    with open_db(Path("unused"), url) as db:
        out: dict[str, set[str]] = {}
        for table, column in db.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ):
            out.setdefault(table, set()).add(column)
        return out


def test_both_engines_have_the_same_tables_and_columns(tmp_path: Path, pg_url: str) -> None:
    sqlite = _sqlite_columns(tmp_path / "hub.db")
    pg = _postgres_columns(pg_url)
    assert "queue" in sqlite
    assert "job_runs" in sqlite
    assert pg == sqlite


def test_each_engine_is_at_its_newest_schema(tmp_path: Path, pg_url: str) -> None:
    with connect(tmp_path / "hub.db") as db:
        assert schema_version(db) == latest_schema(SQLITE)
    with open_db(Path("unused"), pg_url) as db:
        assert schema_version(db) == latest_schema(POSTGRESQL)
        # Opening again applies nothing twice.
        assert isinstance(db, postgres.PgDb)
        assert postgres.migrate(db) == []


def test_placeholders_become_psycopgs_and_percent_signs_stay_literal() -> None:
    sql = "SELECT a FROM t WHERE b = ? AND c LIKE 'x%?' AND d = ? AND e % 7 = 0"
    assert postgres.translate(sql) == (
        "SELECT a FROM t WHERE b = %s AND c LIKE 'x%%?' AND d = %s AND e %% 7 = 0"
    )
    assert postgres.translate("SELECT 'x%'", bound=False) == "SELECT 'x%'"


def test_insert_or_ignore_becomes_on_conflict_do_nothing() -> None:
    assert postgres.translate("INSERT OR IGNORE INTO t (a) VALUES (?)") == (
        "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING"
    )
    assert postgres.translate("INSERT OR IGNORE INTO t (a) VALUES (?) RETURNING a") == (
        "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING RETURNING a"
    )


def test_notices_are_split_below_the_payload_limit_and_parse_back() -> None:
    from hub.storage.listen import parse

    ids = [f"node{i:05d}" for i in range(3000)]
    payloads = postgres.notice_payloads("tag1", "mail", ids)
    assert len(payloads) > 1
    assert all(len(p.encode()) <= postgres.MAX_PAYLOAD for p in payloads)
    back: list[str] = []
    for p in payloads:
        found = parse(p)
        assert found is not None
        assert found[:2] == ("tag1", "mail")
        back += found[2]
    assert back == sorted(ids)
    assert parse("") is None
    assert parse("only-a-tag") is None
