"""The archive: consistent snapshots of live databases, modes, refusals, tamper and traversal."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import shutil
import sqlite3
import stat
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from node import backup as node_backup
from node.backup import BackupFailed
from support.backupfile import MAGIC, MAX_DB
from tests.backup.conftest import FAST_KDF, PASSPHRASE, dump, dump_conn, member_offsets, rewrite

NOW = dt.datetime(2026, 9, 21, 12, 0, tzinfo=dt.UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _backup(node_dir: Path, out: Path, **kw: Any) -> None:
    node_backup.backup(node_dir, out, created=NOW, kdf=FAST_KDF, **kw)


def _writer(db: Path) -> sqlite3.Connection:
    """A second writer, like the running service's: WAL, no automatic checkpoint."""
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    conn.execute("CREATE TABLE IF NOT EXISTS total (n INTEGER NOT NULL)")
    conn.execute("INSERT INTO total SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM total)")
    return conn


def test_snapshot_includes_what_sits_only_in_the_wal(node_dir: Path, tmp_path: Path) -> None:
    """Rows committed by an open writer but not yet checkpointed are in the restored db."""
    conn = _writer(node_dir / "node.db")
    conn.executemany("INSERT INTO t (body) VALUES (?)", [(f"row {i}",) for i in range(200)])
    copied = tmp_path / "copied.db"
    shutil.copy(node_dir / "node.db", copied)  # what a plain file copy would get
    _backup(node_dir, tmp_path / "b.tar")
    node_backup.restore(tmp_path / "b.tar", tmp_path / "restored")
    assert dump(tmp_path / "restored" / "node.db") == dump_conn(conn)
    assert "t" not in dump(copied)  # everything of the writer was still in node.db-wal
    conn.close()


def test_snapshot_is_consistent_while_a_writer_keeps_writing(
    node_dir: Path, tmp_path: Path
) -> None:
    """Backups taken during a stream of transactions each restore one committed state."""
    conn = _writer(node_dir / "node.db")
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (body) VALUES ('x')")
            conn.execute("UPDATE total SET n = n + 1")
            conn.execute("COMMIT")

    thread = threading.Thread(target=write)
    thread.start()
    try:
        for i in range(3):
            while conn.execute("SELECT n FROM total").fetchone()[0] < 50 * (i + 1):
                time.sleep(0.001)
            _backup(node_dir, tmp_path / f"b{i}.tar")
    finally:
        stop.set()
        thread.join()
    seen = []
    for i in range(3):
        node_backup.restore(tmp_path / f"b{i}.tar", tmp_path / f"r{i}")
        db = sqlite3.connect(tmp_path / f"r{i}" / "node.db")
        rows, ids, total = db.execute(
            "SELECT count(*), max(id), (SELECT n FROM total) FROM t"
        ).fetchone()
        db.close()
        assert rows == ids == total  # never half a transaction
        seen.append(rows)
    assert seen == sorted(seen)
    assert seen[0] >= 50
    conn.close()


def test_archive_restored_files_and_directory_are_private(node_dir: Path, tmp_path: Path) -> None:
    """The archive is 0600; restored keys, db and config are 0600 in a 0700 directory."""
    previous = os.umask(0o022)  # as lax as a default shell; the files must not follow it
    try:
        _backup(node_dir, tmp_path / "b.tar")
        node_backup.restore(tmp_path / "b.tar", tmp_path / "new")
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "b.tar") == 0o600
    assert _mode(tmp_path / "new") == 0o700
    modes = {p.name: _mode(p) for p in (tmp_path / "new").iterdir()}
    assert modes == {"node.toml": 0o600, "node.key": 0o600, "node.db": 0o600}
    assert (tmp_path / "new" / "node.key").read_bytes() == (node_dir / "node.key").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mbe-backup-")]


def test_rotation_key_files_travel_along(node_dir: Path, tmp_path: Path) -> None:
    """Key files kept during a rotation (node.key.previous) are backed up and restored 0600."""
    fd = os.open(node_dir / "node.key.previous", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, os.urandom(64))
    os.close(fd)
    _backup(node_dir, tmp_path / "b.tar")
    node_backup.restore(tmp_path / "b.tar", tmp_path / "new")
    restored = tmp_path / "new" / "node.key.previous"
    assert restored.read_bytes() == (node_dir / "node.key.previous").read_bytes()
    assert _mode(restored) == 0o600


def test_backup_never_overwrites(node_dir: Path, tmp_path: Path) -> None:
    """An existing file or symlink at --out is refused and left as it was."""
    out = tmp_path / "b.tar"
    out.write_bytes(b"older backup")
    with pytest.raises(BackupFailed, match="already exists"):
        _backup(node_dir, out)
    assert out.read_bytes() == b"older backup"
    link = tmp_path / "link.tar"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(BackupFailed, match="already exists"):
        _backup(node_dir, link)
    assert not (tmp_path / "elsewhere").exists()


def test_restore_refuses_a_non_empty_directory(node_dir: Path, tmp_path: Path) -> None:
    """Restoring over anything (even the live directory) is refused; nothing is touched."""
    _backup(node_dir, tmp_path / "b.tar")
    before = dump(node_dir / "node.db")
    with pytest.raises(BackupFailed, match="not empty"):
        node_backup.restore(tmp_path / "b.tar", node_dir)
    assert dump(node_dir / "node.db") == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(BackupFailed, match="not empty"):
        node_backup.restore(tmp_path / "b.tar", tmp_path / "file")
    (tmp_path / "empty").mkdir()
    node_backup.restore(tmp_path / "b.tar", tmp_path / "empty")
    assert (tmp_path / "empty" / "node.db").exists()


@pytest.mark.parametrize("member", ["MANIFEST.json", "node.toml", "node.key", "node.db"])
def test_a_changed_byte_is_refused_and_nothing_stays(
    node_dir: Path, tmp_path: Path, member: str
) -> None:
    """A flipped byte in any member fails the restore, which removes what it wrote."""
    archive = tmp_path / "b.tar"
    _backup(node_dir, archive)
    offset, size = member_offsets(archive)[member]
    data = bytearray(archive.read_bytes())
    data[offset + size // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    with pytest.raises(BackupFailed):
        node_backup.restore(archive, tmp_path / "new")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("where", ["start", "manifest", "key", "db-middle", "db-end"])
def test_a_truncated_archive_is_refused(node_dir: Path, tmp_path: Path, where: str) -> None:
    """An archive cut short anywhere before the end of its data is refused."""
    archive = tmp_path / "b.tar"
    _backup(node_dir, archive)
    offsets = member_offsets(archive)
    cut = {
        "start": 100,
        "manifest": offsets["MANIFEST.json"][0] + 10,
        "key": offsets["node.key"][0] + 10,
        "db-middle": offsets["node.db"][0] + offsets["node.db"][1] // 2,
        "db-end": offsets["node.db"][0] + offsets["node.db"][1] - 1,
    }[where]
    archive.write_bytes(archive.read_bytes()[:cut])
    with pytest.raises(BackupFailed, match=r"truncated|damaged|not an mbe-sync backup"):
        node_backup.restore(archive, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def _manifest(data: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(data)
    return doc


def _info(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info


def test_traversal_names_are_refused(node_dir: Path, tmp_path: Path) -> None:
    """A manifest or member named ../x, /x or a symlink never writes outside the directory."""
    archive = tmp_path / "b.tar"
    _backup(node_dir, archive)

    def listed(m: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
        if m.name != "MANIFEST.json":
            return [(_info("../evil.key" if m.name == "node.key" else m.name, m.size), data)]
        doc = _manifest(data)
        doc["files"][1]["name"] = "../evil.key"
        body = json.dumps(doc).encode()
        return [(_info(m.name, len(body)), body)]

    def extra(m: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
        out = [(m, data)]
        if m.name == "node.key":
            out.append((_info("../evil.key", 64), os.urandom(64)))
        return out

    def symlink(m: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
        if m.name != "node.key":
            return [(m, data)]
        link = _info("node.key", 0, tarfile.SYMTYPE)
        link.linkname = "/etc/passwd"
        return [(link, b"")]

    for edit, message in ((listed, "unsafe"), (extra, "unexpected member"), (symlink, "match")):
        bad = tmp_path / f"{edit.__name__}.tar"
        rewrite(archive, bad, edit)
        with pytest.raises(BackupFailed, match=message):
            node_backup.restore(bad, tmp_path / "sub" / "new")
        assert not (tmp_path / "sub" / "new").exists()
        assert not (tmp_path / "sub" / "evil.key").exists()
        assert not (tmp_path / "evil.key").exists()


def test_sizes_beyond_the_bounds_are_refused_before_writing(node_dir: Path, tmp_path: Path) -> None:
    """A manifest announcing an oversized member is refused before any file is written."""
    archive = tmp_path / "b.tar"
    _backup(node_dir, archive)

    def huge(m: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
        if m.name != "MANIFEST.json":
            return [(m, data)]
        doc = _manifest(data)
        doc["files"][-1]["size"] = MAX_DB + 1
        body = json.dumps(doc).encode()
        return [(_info(m.name, len(body)), body)]

    rewrite(archive, tmp_path / "huge.tar", huge)
    with pytest.raises(BackupFailed, match="bad role or size"):
        node_backup.restore(tmp_path / "huge.tar", tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_a_key_that_does_not_match_the_manifest_is_refused(node_dir: Path, tmp_path: Path) -> None:
    """The restored node.key must have the fingerprint the manifest recorded."""
    archive = tmp_path / "b.tar"
    _backup(node_dir, archive)

    def other_identity(m: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
        if m.name != "MANIFEST.json":
            return [(m, data)]
        doc = _manifest(data)
        doc["identity"] = "AAAA-BBBB-CCCC-DDDD"
        body = json.dumps(doc).encode()
        return [(_info(m.name, len(body)), body)]

    rewrite(archive, tmp_path / "other.tar", other_identity)
    with pytest.raises(BackupFailed, match="fingerprint"):
        node_backup.restore(tmp_path / "other.tar", tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_a_backup_from_newer_software_is_refused(
    node_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database with a schema newer than this software's migrations is not restored."""
    archive = tmp_path / "b.tar"
    _backup(node_dir, archive)
    monkeypatch.setattr(node_backup, "migrations", lambda: [])
    with pytest.raises(BackupFailed, match="newer than this software"):
        node_backup.restore(archive, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_encrypted_round_trip(node_dir: Path, tmp_path: Path) -> None:
    """An encrypted archive shows no plaintext and restores with the passphrase."""
    conn = _writer(node_dir / "node.db")
    conn.execute("INSERT INTO t (body) VALUES ('Familienname Mustermann')")
    archive = tmp_path / "b.enc"
    _backup(node_dir, archive, passphrase=PASSPHRASE)
    raw = archive.read_bytes()
    assert raw.startswith(MAGIC)
    assert b"Mustermann" not in raw
    assert (node_dir / "node.key").read_bytes() not in raw
    node_backup.restore(archive, tmp_path / "new", passphrase=PASSPHRASE)
    assert dump(tmp_path / "new" / "node.db") == dump_conn(conn)
    conn.close()


def test_encrypted_archive_refuses_wrong_passphrase_tamper_and_truncation(
    node_dir: Path, tmp_path: Path
) -> None:
    """Wrong passphrase, a flipped bit, a cut tail, a missing passphrase: all refused, no dir."""
    archive = tmp_path / "b.enc"
    _backup(node_dir, archive, passphrase=PASSPHRASE)
    raw = archive.read_bytes()
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0x80
    header = bytearray(raw)
    header[len(MAGIC) + 3] ^= 0x01  # the salt: authenticated with the first chunk
    cases: list[tuple[bytes, bytes | None, str]] = [
        (raw, b"wrong passphrase here", "cannot decrypt"),
        (bytes(flipped), PASSPHRASE, "cannot decrypt"),
        (bytes(header), PASSPHRASE, "cannot decrypt"),
        (raw[:-20], PASSPHRASE, "truncated"),
        (raw[: len(raw) // 2], PASSPHRASE, "truncated"),
        (raw + b"more", PASSPHRASE, "after the end"),
        (raw, None, "is encrypted"),
    ]
    for data, passphrase, message in cases:
        archive.write_bytes(data)
        with pytest.raises(BackupFailed, match=message):
            node_backup.restore(archive, tmp_path / "new", passphrase=passphrase)
        assert not (tmp_path / "new").exists()


def test_plain_archive_with_a_passphrase_is_refused(node_dir: Path, tmp_path: Path) -> None:
    """Expecting encryption and finding none is an error, not a silent success."""
    _backup(node_dir, tmp_path / "b.tar")
    with pytest.raises(BackupFailed, match="not encrypted"):
        node_backup.restore(tmp_path / "b.tar", tmp_path / "new", passphrase=PASSPHRASE)


def test_header_asking_for_absurd_kdf_work_is_refused(node_dir: Path, tmp_path: Path) -> None:
    """Argon2id limits in the header are bounded before any work is done."""
    archive = tmp_path / "b.enc"
    _backup(node_dir, archive, passphrase=PASSPHRASE)
    raw = bytearray(archive.read_bytes())
    at = len(MAGIC) + 16 + 8  # memlimit
    raw[at : at + 8] = (1 << 62).to_bytes(8, "big")
    archive.write_bytes(bytes(raw))
    with pytest.raises(BackupFailed, match="memlimit out of range"):
        node_backup.restore(archive, tmp_path / "new", passphrase=PASSPHRASE)


def test_manifest_describes_the_contents_without_personal_data(
    node_dir: Path, tmp_path: Path
) -> None:
    """The manifest names files, sizes, hashes, schema and fingerprint; the tar no owners."""
    _backup(node_dir, tmp_path / "b.tar")
    with tarfile.open(tmp_path / "b.tar") as tar:
        members = tar.getmembers()
        f = tar.extractfile("MANIFEST.json")
        assert f is not None
        doc = _manifest(f.read())
    assert [m.name for m in members] == ["MANIFEST.json", "node.toml", "node.key", "node.db"]
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert doc["kind"] == "node"
    assert doc["created"] == "2026-09-21T12:00:00+00:00"
    assert [f["role"] for f in doc["files"]] == ["config", "key", "db"]
    assert doc["schema_version"] >= 1


def test_restored_node_opens_with_the_service_code(node_dir: Path, tmp_path: Path) -> None:
    """The restored directory loads as settings, keys and a migrated store."""
    from node.config import load_keys, load_settings
    from node.storage.db import open_database

    _backup(node_dir, tmp_path / "b.tar")
    node_backup.restore(tmp_path / "b.tar", tmp_path / "new")
    settings = load_settings(tmp_path / "new")
    assert load_keys(settings.key_path).public == load_keys(node_dir / "node.key").public
    db = open_database(settings.db_path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.conn.close()
    assert dataclasses.replace(settings, data_dir=node_dir) == load_settings(node_dir)


def test_io_helper_reads_in_pieces() -> None:
    """The tar reader may ask for any size; the encrypted stream answers exactly."""
    from support.backupfile import _OpeningReader, _SealingWriter

    buf = io.BytesIO()
    writer = _SealingWriter(buf, PASSPHRASE, FAST_KDF, b"s" * 16)
    payload = os.urandom(3 * (1 << 20) + 123)
    writer.write(payload[:100])
    writer.write(payload[100:])
    writer.finish()
    buf.seek(len(MAGIC))
    reader = _OpeningReader(buf, PASSPHRASE)
    got = reader.read(7) + reader.read(1 << 20) + reader.read()
    assert got == payload
