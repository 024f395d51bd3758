"""Fixtures for backup tests: node and hub data directories, a cheap KDF, table dumps."""

from __future__ import annotations

import io
import sqlite3
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from nacl.pwhash import argon2id

from hub.keyfile import write_keys as write_hub_keys
from hub.maintenance import refresh_directory
from hub.settings import default_config, load_settings
from hub.storage.db import connect
from node.datadir import init_data_dir
from protocol.keys import PrivateKeys
from support.backupfile import Kdf

# The CLI uses Argon2id "moderate" (0.4 s, 256 MiB); library tests need no real cost.
FAST_KDF = Kdf(argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)
PASSPHRASE = b"correct horse battery staple"


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    """A fresh node data directory, as `mbe-node init` makes it."""
    path = tmp_path / "node"
    init_data_dir(path, "Beratungsstelle Test")
    return path


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    """A fresh hub data directory, as `mbe-hub init` makes it."""
    path = tmp_path / "hub"
    path.mkdir(mode=0o700)
    keys = PrivateKeys.generate()
    write_hub_keys(path / "hub.key", keys)
    (path / "hub.toml").write_text(default_config("Testregion", "https://hub.test"), "utf-8")
    settings = load_settings(path)
    db = connect(settings.db_path)
    try:
        refresh_directory(db, keys, settings, int(time.time()))
    finally:
        db.close()
    return path


def dump(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted: two databases with equal dumps hold the same data."""
    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return dump_conn(conn)
    finally:
        conn.close()


def dump_conn(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {
        t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)  # noqa: S608 (names from sqlite_master)
        for t in tables
    }


def member_offsets(archive: Path) -> dict[str, tuple[int, int]]:
    """(data offset, size) of every member of a plain archive."""
    with tarfile.open(archive) as tar:
        return {m.name: (m.offset_data, m.size) for m in tar.getmembers()}


def rewrite(archive: Path, out: Path, edit: Any) -> None:
    """Copy a plain archive member by member through `edit(name, data) -> [(info, data)]`."""
    with tarfile.open(archive) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for m in src.getmembers():
            f = src.extractfile(m)
            data = f.read() if f is not None else b""
            for info, body in edit(m, data):
                dst.addfile(info, io.BytesIO(body) if body is not None else None)
