"""The backup archive of a node's or hub's data directory: writing, checking, restoring.

`mbe-node backup` and `mbe-hub backup` share this module (node and hub may
not import each other, and `protocol/` does no I/O, so it lives in `support/`).
Each passes a `Layout` naming its files.

An archive is a POSIX tar: `MANIFEST.json` first (kind, creation time, schema
version, key fingerprint, and name, role, size and SHA-256 of every other
member), then the config, the key file(s) and a snapshot of the database. The
snapshot comes from SQLite's online backup API over a read-only connection:
a consistent state of the WAL database while the service keeps writing, which
a file copy of `*.db` (without its `-wal`) is not.

Encrypted (`--passphrase-file`): the tar stream is cut into chunks sealed with
libsodium's secretstream (XChaCha20-Poly1305) under a key from Argon2id over
the passphrase. The last chunk carries the FINAL tag, so a truncated file is
refused, and the file header (salt, KDF limits) is authenticated with the
first chunk. Alternatives rejected: one SecretBox over the whole archive needs
it in memory twice; piping to age or gpg works too (docs/operations.md) but
leaves the default unencrypted, and a timer-driven backup should not be.

Restoring reads the stream once, writes only the names the manifest lists,
each flat (no `/`, no `..`), as a regular file created with O_EXCL and mode
0600, checks sizes and hashes, then runs `PRAGMA integrity_check`. Any failure
removes what was written. The hashes detect corruption, not a forger who can
rewrite the manifest too; the encrypted form is authenticated.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import sqlite3
import struct
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from nacl import bindings as sodium
from nacl.exceptions import CryptoError
from nacl.pwhash import argon2id

from support.files import create_private, fsync_dir, link_new

FORMAT = "mbe-backup"
VERSION = 1
MANIFEST = "MANIFEST.json"
MAGIC = b"MBE-BACKUP-ENCRYPTED-1\n"
CHUNK = 1 << 20
MIN_PASSPHRASE = 12
# Why `backup` without --passphrase-file is refused, and how to make one.
ENCRYPTION_REQUIRED = (
    "a backup holds private keys and personal data: encrypt it with --passphrase-file"
    " FILE (create one: umask 077; head -c 32 /dev/urandom | base64 > FILE, and keep a"
    " copy of it off this server) or say --unencrypted to write it in clear (e.g. to"
    " encrypt it with age or gpg yourself)"
)

# Upper bounds a restore enforces before writing anything of that size.
MAX_MANIFEST = 64 << 10
MAX_CONFIG = 1 << 20
MAX_KEY = 4 << 10
MAX_DB = 256 << 30
MAX_FILES = 16

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_KEY_NAME = re.compile(r"[A-Za-z0-9_-]+\.key(\.[A-Za-z0-9_-]+)*")
_HEADER = struct.Struct(">QQ")  # opslimit, memlimit
_LENGTH = struct.Struct(">I")
_ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
_TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_STREAM_HEADER = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
CONFIG, KEY, DB = "config", "key", "db"
_LIMITS = {CONFIG: MAX_CONFIG, KEY: MAX_KEY, DB: MAX_DB}


class BackupError(Exception):
    """A backup or restore that cannot be done; the message is one line for the operator."""


@dataclass(frozen=True)
class Layout:
    """Which files of a data directory make a backup."""

    kind: str  # "node" or "hub"
    config: str
    key: str  # the key file that must exist; other `*.key`, `*.key.*` files go along
    db: str


@dataclass(frozen=True)
class Kdf:
    """Argon2id limits, stored in the encrypted file's header."""

    opslimit: int = argon2id.OPSLIMIT_MODERATE
    memlimit: int = argon2id.MEMLIMIT_MODERATE

    def __post_init__(self) -> None:
        # Bounds also protect a restore from a header that asks for absurd work.
        if not argon2id.OPSLIMIT_MIN <= self.opslimit <= argon2id.OPSLIMIT_SENSITIVE:
            raise BackupError("archive header: Argon2id opslimit out of range")
        if not argon2id.MEMLIMIT_MIN <= self.memlimit <= argon2id.MEMLIMIT_SENSITIVE:
            raise BackupError("archive header: Argon2id memlimit out of range")


@dataclass(frozen=True)
class Member:
    name: str
    role: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What an archive holds; no personal data (names, sizes, hashes, a key fingerprint)."""

    kind: str
    created: str
    schema_version: int
    identity: str
    members: tuple[Member, ...]
    encrypted: bool = False

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "kind": self.kind,
            "created": self.created,
            "schema_version": self.schema_version,
            "identity": self.identity,
            "files": [dataclasses.asdict(m) for m in self.members],
        }
        return json.dumps(doc, indent=1, sort_keys=True).encode()

    @property
    def size(self) -> int:
        return sum(m.size for m in self.members)


# ---------------------------------------------------------------- passphrase


def read_passphrase(path: Path) -> bytes:
    """The passphrase in a file (one trailing newline ignored); refuse a short one,
    and one in a file other users can read or change (as the key files are)."""
    try:
        mode = path.stat().st_mode
        raw = path.read_bytes()
    except OSError as exc:
        raise BackupError(f"cannot read passphrase file {path}: {exc.strerror or exc}") from None
    if mode & 0o007:
        raise BackupError(
            f"passphrase file {path} is open to other users (mode {mode & 0o777:04o});"
            f" restrict it: chmod 600 {path}"
        )
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if len(raw) < MIN_PASSPHRASE:
        raise BackupError(f"passphrase in {path} is shorter than {MIN_PASSPHRASE} characters")
    return raw


def _derive(passphrase: bytes, salt: bytes, kdf: Kdf) -> bytes:
    return bytes(
        argon2id.kdf(
            sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES,
            passphrase,
            salt,
            opslimit=kdf.opslimit,
            memlimit=kdf.memlimit,
        )
    )


class _SealingWriter:
    """A write-only file object that seals what tarfile writes, chunk by chunk."""

    def __init__(self, out: IO[bytes], passphrase: bytes, kdf: Kdf, salt: bytes) -> None:
        self._out = out
        self._buf = bytearray()
        head = MAGIC + salt + _HEADER.pack(kdf.opslimit, kdf.memlimit)
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        stream_header = sodium.crypto_secretstream_xchacha20poly1305_init_push(
            self._state, _derive(passphrase, salt, kdf)
        )
        out.write(head + stream_header)
        self._ad: bytes | None = head  # binds salt and limits to the first chunk

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) >= CHUNK:
            self._push(bytes(self._buf[:CHUNK]), _TAG_MESSAGE)
            del self._buf[:CHUNK]
        return len(data)

    def finish(self) -> None:
        self._push(bytes(self._buf), _TAG_FINAL)
        self._buf.clear()

    def _push(self, chunk: bytes, tag: int) -> None:
        sealed = sodium.crypto_secretstream_xchacha20poly1305_push(
            self._state, chunk, self._ad, tag
        )
        self._ad = None
        self._out.write(_LENGTH.pack(len(sealed)) + sealed)


class _OpeningReader:
    """A read-only file object over an encrypted archive; refuses tampering and truncation."""

    def __init__(self, src: IO[bytes], passphrase: bytes) -> None:
        self._src = src
        salt = _read_exact(src, argon2id.SALTBYTES, "header")
        opslimit, memlimit = _HEADER.unpack(_read_exact(src, _HEADER.size, "header"))
        self._ad: bytes | None = MAGIC + salt + _HEADER.pack(opslimit, memlimit)
        key = _derive(passphrase, salt, Kdf(opslimit, memlimit))
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(
            self._state, _read_exact(src, _STREAM_HEADER, "header"), key
        )
        self._buf = bytearray()
        self._final = False

    def read(self, size: int = -1) -> bytes:
        while not self._final and (size < 0 or len(self._buf) < size):
            self._pull()
        n = len(self._buf) if size < 0 else min(size, len(self._buf))
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _pull(self) -> None:
        (length,) = _LENGTH.unpack(_read_exact(self._src, _LENGTH.size, "chunk"))
        if not _ABYTES <= length <= CHUNK + _ABYTES:
            raise BackupError("archive is damaged (bad chunk length)")
        sealed = _read_exact(self._src, length, "chunk")
        try:
            chunk, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                self._state, sealed, self._ad
            )
        except CryptoError:
            raise BackupError(
                "cannot decrypt the archive: wrong passphrase, or the file was changed"
            ) from None
        self._ad = None
        self._buf += chunk
        if tag == _TAG_FINAL:
            self._final = True
            if self._src.read(1):
                raise BackupError("archive is damaged (data after the end)")


def _read_exact(src: IO[bytes], n: int, what: str) -> bytes:
    data = src.read(n)
    if len(data) != n:
        raise BackupError(f"archive is truncated (incomplete {what})")
    return data


# ---------------------------------------------------------------- backup


def _key_files(layout: Layout, data_dir: Path) -> list[str]:
    """The required key file plus any other `*.key` / `*.key.*` (e.g. kept during a rotation)."""
    if not (data_dir / layout.key).is_file():
        raise BackupError(f"{data_dir / layout.key} not found")
    names = {layout.key}
    for entry in data_dir.iterdir():
        if _KEY_NAME.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
            names.add(entry.name)
    return sorted(names)


def snapshot_database(src: Path, dst: Path) -> int:
    """Copy a live WAL database consistently to `dst` (rollback journal); return its schema."""
    if not src.is_file():
        raise BackupError(f"{src} not found")
    try:
        source = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True)
        try:
            source.execute("PRAGMA busy_timeout = 10000")
            target = sqlite3.connect(dst, isolation_level=None)
            try:
                # One step (pages=-1): a WAL reader sees one snapshot and never blocks
                # the service's writer, so no restart loop as with page-wise copying.
                source.backup(target, pages=-1)
                target.execute("PRAGMA journal_mode = DELETE")
                _check_integrity(target, "the snapshot")
                return _schema_version(target)
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot read database {src}: {exc}") from None


def _check_integrity(conn: sqlite3.Connection, what: str) -> None:
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    if rows != ["ok"]:
        raise BackupError(f"{what} fails PRAGMA integrity_check: {rows[0]}")


def _schema_version(conn: sqlite3.Connection) -> int:
    try:
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    except sqlite3.Error:
        raise BackupError("the database has no schema_version table") from None
    return int(row[0] or 0)


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def write_backup(
    layout: Layout,
    data_dir: Path,
    out: Path,
    *,
    identity: str,
    created: dt.datetime,
    passphrase: bytes | None = None,
    kdf: Kdf | None = None,
    random: Callable[[int], bytes] = os.urandom,
) -> Manifest:
    """Write the archive to `out` (mode 0600, never replacing a file); return its manifest."""
    if out.exists() or out.is_symlink():
        raise BackupError(f"{out} already exists; refusing to overwrite it")
    if not out.parent.is_dir():
        raise BackupError(f"directory {out.parent} does not exist")
    named = [(layout.config, CONFIG)] + [(n, KEY) for n in _key_files(layout, data_dir)]
    # Staging next to `out`: a private 0700 directory, removed on every path. Small
    # files are read once into it, so the hashes match what the archive holds.
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".mbe-backup-") as tmp:
        stage = Path(tmp)
        files = [(name, role, _stage_copy(data_dir / name, stage, role)) for name, role in named]
        snapshot = stage / layout.db
        schema = snapshot_database(data_dir / layout.db, snapshot)
        files.append((layout.db, DB, snapshot))
        members = tuple(Member(n, role, p.stat().st_size, _hash(p)) for n, role, p in files)
        manifest = Manifest(
            kind=layout.kind,
            created=created.astimezone(dt.UTC).isoformat(timespec="seconds"),
            schema_version=schema,
            identity=identity,
            members=members,
            encrypted=passphrase is not None,
        )
        partial = stage / "archive"
        with create_private(partial) as f:
            _write_tar(f, manifest, [p for _, _, p in files], created, passphrase, kdf, random)
            f.flush()
            os.fsync(f.fileno())
        _publish(partial, out)
    return manifest


def _stage_copy(src: Path, stage: Path, role: str) -> Path:
    try:
        with src.open("rb") as f:
            data = f.read(_LIMITS[role] + 1)
    except FileNotFoundError:
        raise BackupError(f"{src} not found") from None
    if len(data) > _LIMITS[role]:
        raise BackupError(f"{src} is larger than a {role} file can be")
    copy = stage / src.name
    with create_private(copy) as f:
        f.write(data)
    return copy


def _write_tar(
    out: IO[bytes],
    manifest: Manifest,
    paths: list[Path],
    created: dt.datetime,
    passphrase: bytes | None,
    kdf: Kdf | None,
    random: Callable[[int], bytes],
) -> None:
    sealer = None
    target: Any = out
    if passphrase is not None:
        sealer = _SealingWriter(out, passphrase, kdf or Kdf(), random(argon2id.SALTBYTES))
        target = sealer
    mtime = int(created.timestamp())
    with tarfile.open(fileobj=target, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        doc = manifest.to_json()
        tar.addfile(_info(MANIFEST, len(doc), mtime), fileobj=_Bytes(doc))
        for member, path in zip(manifest.members, paths, strict=True):
            with path.open("rb") as f:
                tar.addfile(_info(member.name, member.size, mtime), fileobj=f)
    if sealer is not None:
        sealer.finish()


def _info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    # No owner names or ids: the archive says nothing about the machine it came from.
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o600
    return info


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def read(self, size: int = -1) -> bytes:
        n = len(self._data) if size < 0 else size
        out, self._data = bytes(self._data[:n]), self._data[n:]
        return out


def _publish(partial: Path, out: Path) -> None:
    """Move the finished archive to `out` unless something appeared there meanwhile."""
    try:
        link_new(partial, out)  # fails on an existing name, unlike rename
    except FileExistsError:
        raise BackupError(f"{out} already exists; refusing to overwrite it") from None
    os.chmod(out, 0o600)
    fsync_dir(out.parent)


# ---------------------------------------------------------------- restore


def restore_backup(
    layout: Layout,
    archive: Path,
    target: Path,
    *,
    passphrase: bytes | None,
    max_schema: int,
    finish: Callable[[Path, Manifest], None] | None = None,
) -> Manifest:
    """Restore `archive` into the new or empty directory `target`; undo everything on failure.

    `finish(target, manifest)` runs last: checks as the service would make them
    (config, key) and any final step; whatever it raises also undoes the restore.
    """
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} is not empty; restore only into a new or empty directory")
    if not archive.is_file():
        raise BackupError(f"{archive} not found")
    created_dir = not target.exists()
    written: list[Path] = []
    try:
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        with archive.open("rb") as raw:
            encrypted = raw.read(len(MAGIC)) == MAGIC
            if encrypted and passphrase is None:
                raise BackupError(f"{archive} is encrypted; pass --passphrase-file")
            if not encrypted and passphrase is not None:
                raise BackupError(f"{archive} is not encrypted, but --passphrase-file was given")
            src: Any = _OpeningReader(raw, passphrase) if passphrase is not None else raw
            if not encrypted:
                raw.seek(0)
            manifest = _extract(layout, src, target, written)
            if encrypted:
                src.read()  # reach the FINAL chunk: a cut-off tail is refused
        _check_database(target / layout.db, manifest, max_schema)
        if finish is not None:
            finish(target, manifest)
        for path in written:
            os.chmod(path, 0o600)
        fsync_dir(target)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        if created_dir:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return Manifest(
        manifest.kind,
        manifest.created,
        manifest.schema_version,
        manifest.identity,
        manifest.members,
        encrypted=encrypted,
    )


def _extract(layout: Layout, src: IO[bytes], target: Path, written: list[Path]) -> Manifest:
    try:
        with tarfile.open(fileobj=src, mode="r|") as tar:
            manifest: Manifest | None = None
            expected: dict[str, Member] = {}
            for info in tar:
                if manifest is None:
                    if info.name != MANIFEST or not info.isreg() or info.size > MAX_MANIFEST:
                        raise BackupError("not an mbe-sync backup (no manifest first)")
                    manifest = _parse_manifest(_read_member(tar, info), layout)
                    expected = {m.name: m for m in manifest.members}
                    continue
                member = expected.pop(info.name, None)
                if member is None:
                    raise BackupError(f"archive has an unexpected member {info.name!r}")
                if not info.isreg() or info.size != member.size:
                    raise BackupError(f"archive member {member.name} does not match the manifest")
                path = target / member.name
                _copy_member(tar, info, path, member, written)
    except tarfile.TarError as exc:
        raise BackupError(f"archive is damaged or truncated ({exc})") from None
    if manifest is None:
        raise BackupError("not an mbe-sync backup (empty archive)")
    if expected:
        raise BackupError(f"archive is truncated: {sorted(expected)[0]} is missing")
    return manifest


def _read_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(info)
    if f is None:
        raise BackupError(f"archive member {info.name!r} is not a file")
    data = f.read()
    if len(data) != info.size:
        raise BackupError("archive is truncated")
    return data


def _copy_member(
    tar: tarfile.TarFile, info: tarfile.TarInfo, path: Path, member: Member, written: list[Path]
) -> None:
    f = tar.extractfile(info)
    if f is None:
        raise BackupError(f"archive member {member.name} is not a file")
    h = hashlib.sha256()
    size = 0
    with create_private(path) as out:
        written.append(path)
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
            size += len(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    if size != member.size:
        raise BackupError(f"archive is truncated inside {member.name}")
    if h.hexdigest() != member.sha256:
        raise BackupError(f"archive member {member.name} is damaged (checksum mismatch)")


def _parse_manifest(raw: bytes, layout: Layout) -> Manifest:
    try:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise BackupError("not an mbe-sync backup (unknown manifest format)")
        if doc.get("version") != VERSION:
            raise BackupError(f"backup format version {doc.get('version')} is not supported")
        if doc.get("kind") != layout.kind:
            raise BackupError(f"this is a {doc.get('kind')} backup, not a {layout.kind} backup")
        members = tuple(
            Member(str(f["name"]), str(f["role"]), int(f["size"]), str(f["sha256"]))
            for f in doc["files"]
        )
        manifest = Manifest(
            kind=layout.kind,
            created=str(doc["created"]),
            schema_version=int(doc["schema_version"]),
            identity=str(doc["identity"]),
            members=members,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BackupError("archive manifest is damaged") from None
    _check_members(members, layout)
    return manifest


def _check_members(members: tuple[Member, ...], layout: Layout) -> None:
    names = [m.name for m in members]
    if len(members) > MAX_FILES or len(set(names)) != len(names):
        raise BackupError("archive manifest is damaged (too many or repeated files)")
    for m in members:
        if not _SAFE_NAME.fullmatch(m.name) or m.name == MANIFEST:
            raise BackupError(f"archive has an unsafe member name {m.name!r}")
        if m.role not in _LIMITS or not 0 <= m.size <= _LIMITS[m.role]:
            raise BackupError(f"archive member {m.name} has a bad role or size")
        if m.role == KEY and not _KEY_NAME.fullmatch(m.name):
            raise BackupError(f"archive has an unsafe key file name {m.name!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", m.sha256):
            raise BackupError("archive manifest is damaged (bad checksum)")
    required = {(layout.config, CONFIG), (layout.key, KEY), (layout.db, DB)}
    present = {(m.name, m.role) for m in members}
    if not required <= present or [m.role for m in members].count(DB) != 1:
        raise BackupError(f"archive lacks {layout.config}, {layout.key} or {layout.db}")
    if [m.role for m in members].count(CONFIG) != 1:
        raise BackupError("archive manifest is damaged (more than one config)")


def _check_database(path: Path, manifest: Manifest, max_schema: int) -> None:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            _check_integrity(conn, f"restored {path.name}")
            schema = _schema_version(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"restored {path.name} is not a usable database ({exc})") from None
    if schema != manifest.schema_version:
        raise BackupError(f"restored {path.name} does not match the manifest's schema version")
    if schema > max_schema:
        raise BackupError(
            f"the backup has schema version {schema}, newer than this software ({max_schema}); "
            "install the newer version first"
        )


# ---------------------------------------------------------------- for the CLIs

Fingerprint = Callable[[Path], str]
"""Load a data directory's config and key the way the service would (raising the
service's own errors) and return the key's fingerprint."""

Failure = Callable[[str], Exception]
"""The caller's exception for a failed backup or restore, made from a one-line message."""


@dataclass(frozen=True)
class DataDirBackup:
    """`backup` and `restore` of one kind of data directory, as its CLI offers them.

    `mbe-node` and `mbe-hub` each make one with their file layout, a function
    that loads their directory the way their service does, and their own
    exception; every BackupError comes out as `failure(message)`.
    """

    layout: Layout
    fingerprint: Fingerprint
    failure: Failure

    def backup(
        self,
        data_dir: Path,
        out: Path,
        *,
        created: dt.datetime,
        passphrase: bytes | None = None,
        kdf: Kdf | None = None,
    ) -> Manifest:
        """Check the (possibly running) service's directory, then write its archive to `out`."""
        identity = self.fingerprint(data_dir)
        try:
            return write_backup(
                self.layout,
                data_dir,
                out,
                identity=identity,
                created=created,
                passphrase=passphrase,
                kdf=kdf,
            )
        except BackupError as exc:
            raise self.failure(str(exc)) from None

    def restore(
        self,
        archive: Path,
        target: Path,
        *,
        max_schema: int,
        passphrase: bytes | None = None,
        finish: Callable[[Path, Manifest], None] | None = None,
    ) -> Manifest:
        """Restore into `target`; check that the restored config and key load and that
        the key is the manifest's, then `finish`. Anything raised undoes the restore."""

        def check(restored: Path, manifest: Manifest) -> None:
            if self.fingerprint(restored) != manifest.identity:
                raise BackupError(
                    f"the restored {self.layout.key} does not match the manifest's fingerprint"
                )
            if finish is not None:
                finish(restored, manifest)

        try:
            return restore_backup(
                self.layout,
                archive,
                target,
                passphrase=passphrase,
                max_schema=max_schema,
                finish=check,
            )
        except BackupError as exc:
            raise self.failure(str(exc)) from None

    def passphrase(self, path: Path | None) -> bytes | None:
        """The passphrase in `path` (`--passphrase-file`), None without one."""
        if path is None:
            return None
        try:
            return read_passphrase(path)
        except BackupError as exc:
            raise self.failure(str(exc)) from None
