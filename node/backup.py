"""`mbe-node backup` and `mbe-node restore`: the data directory as one archive.

The archive format and its checks are in `support/backupfile.py` (shared with the
hub). This module names the node's files, checks a restored directory the way
`mbe-node serve` would (config, key mode, key fingerprint) and words the
warnings: a node backup holds the node's private keys and the office's
client data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TextIO

from node.config import CONFIG_FILE, DB_FILE, KEY_FILE, load_keys, load_settings
from node.errors import NodeError
from node.storage.db import migrations
from support.backupfile import ENCRYPTION_REQUIRED, DataDirBackup, Layout, Manifest
from support.migrations import latest_version

LAYOUT = Layout(kind="node", config=CONFIG_FILE, key=KEY_FILE, db=DB_FILE)

WARNING = (
    "WARNING: this backup holds the node's PRIVATE KEYS and the office's CLIENT DATA "
    "(personal data). Keep it {where} and delete it under the office's retention rules."
)


class BackupFailed(NodeError):
    """A backup or restore could not be made; the message says why in one line."""

    status = 500
    kind = "backup"
    title = "Backup or restore failed"


def _fingerprint(data_dir: Path) -> str:
    """Load node.toml and node.key as `mbe-node serve` would; the key's fingerprint."""
    settings = load_settings(data_dir)
    return load_keys(settings.key_path).public.fingerprint()


_ARCHIVE = DataDirBackup(LAYOUT, _fingerprint, BackupFailed)

# Write a consistent archive of the (possibly running) node in `data_dir` to `out`.
backup = _ARCHIVE.backup


def restore(archive: Path, target: Path, *, passphrase: bytes | None = None) -> Manifest:
    """Restore a node archive into the new or empty directory `target`."""
    max_schema = latest_version(migrations())
    return _ARCHIVE.restore(archive, target, max_schema=max_schema, passphrase=passphrase)


def _passphrase(path: str | None) -> bytes | None:
    return _ARCHIVE.passphrase(None if path is None else Path(path))


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def cmd_backup(args: argparse.Namespace, out: TextIO) -> int:
    """`mbe-node backup --dir DIR --out FILE (--passphrase-file F | --unencrypted)`."""
    if args.passphrase_file is None and not args.unencrypted:
        raise BackupFailed(ENCRYPTION_REQUIRED)
    passphrase = _passphrase(args.passphrase_file)
    now = dt.datetime.now(dt.UTC)
    manifest = backup(Path(args.dir), Path(args.out), created=now, passphrase=passphrase)
    names = ", ".join(m.name for m in manifest.members)
    state = "encrypted" if passphrase is not None else "NOT encrypted"
    out.write(f"Backup written to {args.out} ({state}, mode 0600, {_mib(manifest.size)})\n")
    out.write(f"Contents: {names}; schema version {manifest.schema_version}\n")
    out.write(f"Node key fingerprint: {manifest.identity}\n")
    where = (
        "off this server, its passphrase stored apart,"
        if passphrase is not None
        else "encrypted (use --passphrase-file, or age/gpg), off this server,"
    )
    sys.stderr.write(WARNING.format(where=where) + "\n")
    return 0


def cmd_restore(args: argparse.Namespace, out: TextIO) -> int:
    """`mbe-node restore --from FILE --dir NEWDIR [--passphrase-file F]`."""
    manifest = restore(
        Path(args.source), Path(args.dir), passphrase=_passphrase(args.passphrase_file)
    )
    out.write(f"Restored the node backup of {manifest.created} into {args.dir}\n")
    out.write(
        f"Schema version {manifest.schema_version}; node key fingerprint {manifest.identity}\n"
    )
    out.write(
        "Before starting it: stop any node still running with this key. Messages the hub "
        "delivered after the backup are not in it (docs/operations.md, 'After a restore').\n"
    )
    out.write(f"Next: mbe-node serve --dir {args.dir}\n")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `backup` and `restore` to the `mbe-node` parser."""
    p = sub.add_parser("backup", help="write config, keys and a database snapshot to one file")
    p.add_argument("--dir", required=True, help="data directory (the node may be running)")
    p.add_argument("--out", required=True, help="archive to create (never overwritten)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--passphrase-file", help="encrypt with the passphrase in this file")
    how.add_argument(
        "--unencrypted", action="store_true", help="write the archive in clear (not advised)"
    )
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="restore a backup into a new or empty directory")
    p.add_argument("--from", dest="source", required=True, metavar="FILE", help="the archive")
    p.add_argument("--dir", required=True, help="new or empty data directory")
    p.add_argument("--passphrase-file", help="passphrase of an encrypted archive")
    p.set_defaults(func=cmd_restore)
