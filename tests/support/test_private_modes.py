"""Databases (with -wal/-shm) and data directories are private on both sides."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from hub.storage.db import connect
from node.storage.db import open_database
from support.files import restrict_directory


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _shared_db(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    path.chmod(0o644)


def test_a_hub_database_open_to_others_is_made_private(tmp_path: Path) -> None:
    db_path = tmp_path / "hub.db"
    _shared_db(db_path)
    db = connect(db_path)
    try:
        db.conn.execute("CREATE TABLE more (y)")
        for name in ("hub.db", "hub.db-wal", "hub.db-shm"):
            assert _mode(tmp_path / name) == 0o600, name
    finally:
        db.conn.close()


def test_a_node_database_open_to_others_is_made_private(tmp_path: Path) -> None:
    db_path = tmp_path / "node.db"
    _shared_db(db_path)
    db = open_database(db_path)
    try:
        for name in ("node.db", "node.db-wal", "node.db-shm"):
            assert _mode(tmp_path / name) == 0o600, name
    finally:
        db.conn.close()


def test_a_data_directory_open_to_others_is_made_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    assert restrict_directory(data_dir) is True
    assert _mode(data_dir) == 0o700
    assert restrict_directory(data_dir) is False
