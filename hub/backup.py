"""`mbe-hub backup` and `mbe-hub restore`: the hub's data directory as one archive.

The archive format and its checks are in `support/backupfile.py` (shared with the
node). This module names the hub's files, checks a restored directory the way
`mbe-hub serve` would, and publishes the directory once.

Why publish at restore: nodes refuse a directory older than the one they
hold, and the restored hub's newest version is the backup's. A new version
numbered `max(newest + 1, now)` (hub/directory.py) lies above everything the
hub published before, so the offices take it at their next refresh instead of
waiting for a change or a re-signing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import sys
from pathlib import Path

from hub.directory import publish
from hub.errors import HubError
from hub.keyfile import read_keys
from hub.settings import CONFIG_FILE, DB_FILE, KEY_FILE, load_settings
from hub.storage.db import load_migrations, write
from hub.storage.engine import Db, SqliteDb
from support.backupfile import ENCRYPTION_REQUIRED, DataDirBackup, Layout, Manifest
from support.migrations import latest_version

LAYOUT = Layout(kind="hub", config=CONFIG_FILE, key=KEY_FILE, db=DB_FILE)

WARNING = (
    "WARNING: this backup holds the hub's PRIVATE KEY: whoever has it can pose as the hub "
    "to every office. Keep it {where}."
)


class BackupFailed(HubError):
    """A backup or restore could not be made; the message says why in one line."""


def _fingerprint(data_dir: Path) -> str:
    """Load hub.toml and hub.key as `mbe-hub serve` would; the key's fingerprint."""
    settings = load_settings(data_dir)
    return read_keys(settings.key_path).public.fingerprint()


_ARCHIVE = DataDirBackup(LAYOUT, _fingerprint, BackupFailed)

# Write a consistent archive of the (possibly running) hub in `data_dir` to `out`.
backup = _ARCHIVE.backup


def _publish_directory(db: Db, settings_dir: Path, now: int) -> int:
    settings = load_settings(settings_dir)
    keys = read_keys(settings.key_path)
    with write(db):
        return publish(db, keys, settings, now).version


def restore(
    archive: Path, target: Path, *, passphrase: bytes | None = None, now: int
) -> tuple[Manifest, int]:
    """Restore a hub archive into the new or empty `target`; return it and the directory version."""
    published: list[int] = []

    def finish(restored: Path, manifest: Manifest) -> None:
        # The key matches the manifest (checked before); publish with it.
        settings = load_settings(restored)
        conn = sqlite3.connect(settings.db_path, isolation_level=None)
        try:
            published.append(_publish_directory(SqliteDb(conn), restored, now))
        finally:
            conn.close()

    max_schema = latest_version(load_migrations())
    manifest = _ARCHIVE.restore(
        archive, target, max_schema=max_schema, passphrase=passphrase, finish=finish
    )
    return manifest, published[0]


def _passphrase(path: Path | None) -> bytes | None:
    return _ARCHIVE.passphrase(path)


POSTGRESQL_BACKUP = (
    "this hub keeps its state in PostgreSQL ([database] url in hub.toml): back the database "
    "up with PostgreSQL's own tools (pg_dump, or pg_basebackup with WAL archiving) and keep "
    "hub.key and hub.toml safe apart; mbe-hub backup copies a SQLite hub only "
    "(docs/operations.md)"
)


def _refuse_postgresql(data_dir: Path) -> None:
    """An archive of the data directory alone would hold no queue, sites or tokens."""
    try:
        settings = load_settings(data_dir)
    except HubError:
        return  # `backup` says what is wrong with the directory
    if settings.database.postgres_url is not None:
        raise BackupFailed(POSTGRESQL_BACKUP)


def cmd_backup(args: argparse.Namespace) -> int:
    """`mbe-hub backup --dir DIR --out FILE (--passphrase-file F | --unencrypted)`."""
    if args.passphrase_file is None and not args.unencrypted:
        raise BackupFailed(ENCRYPTION_REQUIRED)
    _refuse_postgresql(args.dir)
    passphrase = _passphrase(args.passphrase_file)
    manifest = backup(args.dir, args.out, created=dt.datetime.now(dt.UTC), passphrase=passphrase)
    state = "encrypted" if passphrase is not None else "NOT encrypted"
    size = f"{manifest.size / (1 << 20):.1f} MiB"
    print(f"backup written to {args.out} ({state}, mode 0600, {size})")
    print(f"contents: {', '.join(m.name for m in manifest.members)}; ", end="")
    print(f"schema version {manifest.schema_version}")
    print(f"hub fingerprint: {manifest.identity}")
    where = (
        "off this server and its passphrase stored apart"
        if passphrase is not None
        else "encrypted (use --passphrase-file, or age/gpg) and off this server"
    )
    print(WARNING.format(where=where), file=sys.stderr)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """`mbe-hub restore --from FILE --dir NEWDIR [--passphrase-file F]`."""
    now = int(dt.datetime.now(dt.UTC).timestamp())
    manifest, version = restore(
        args.source, args.dir, passphrase=_passphrase(args.passphrase_file), now=now
    )
    print(f"restored the hub backup of {manifest.created} into {args.dir}")
    print(f"schema version {manifest.schema_version}; hub fingerprint {manifest.identity}")
    print(f"published directory version {version} so offices accept the restored directory")
    print(
        "messages uploaded after the backup are lost; sites, revocations and tokens made "
        "since must be redone (docs/operations.md, 'After a restore')"
    )
    print(f"next: mbe-hub serve --dir {args.dir}")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `backup` and `restore` to the `mbe-hub` parser."""
    p = sub.add_parser("backup", help="write config, key and a database snapshot to one file")
    p.add_argument("--dir", type=_path, required=True, help="data directory (hub may run)")
    p.add_argument("--out", type=_path, required=True, help="archive to create (not overwritten)")
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--passphrase-file", type=_path, help="encrypt with the passphrase in this file"
    )
    how.add_argument(
        "--unencrypted", action="store_true", help="write the archive in clear (not advised)"
    )
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="restore a backup into a new or empty directory")
    p.add_argument("--from", dest="source", type=_path, required=True, metavar="FILE")
    p.add_argument("--dir", type=_path, required=True, help="new or empty data directory")
    p.add_argument("--passphrase-file", type=_path, help="passphrase of an encrypted archive")
    p.set_defaults(func=cmd_restore)


def _path(value: str) -> Path:
    return Path(value).expanduser()
