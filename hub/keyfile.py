"""The hub's private keys on disk: 64 bytes, mode 0600, never world-readable."""

from __future__ import annotations

import stat
from pathlib import Path

from hub.errors import DataDirError
from protocol.errors import MalformedError
from protocol.keys import PrivateKeys
from support.files import write_private_file


def write_keys(path: Path, keys: PrivateKeys) -> None:
    """Create the key file (0600, atomic, fsynced); refuse to overwrite one (that would
    orphan every node)."""
    try:
        write_private_file(path, keys.to_bytes(), replace=False)
    except FileExistsError:
        raise DataDirError(f"{path} already exists; refusing to replace the hub's keys") from None


def read_keys(path: Path) -> PrivateKeys:
    """Load the key file; refuse one that group or others could read."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataDirError(f"{path} is missing (run `mbe-hub init`)") from None
    except OSError as exc:
        raise DataDirError(f"cannot read {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DataDirError(f"{path} is accessible by other users; run `chmod 600 {path}`")
    try:
        return PrivateKeys.from_bytes(data)
    except MalformedError:
        raise DataDirError(f"{path} is not a hub key file (expected 64 bytes)") from None
