"""Creating a node's data directory (`mbe-node init`)."""

from __future__ import annotations

import os
from pathlib import Path

from node.config import CONFIG_FILE, DB_FILE, KEY_FILE, default_config
from node.errors import ConfigError
from node.storage.db import open_database
from protocol.keys import PrivateKeys
from support.files import write_private_file


def init_data_dir(path: Path, name: str, keys: PrivateKeys | None = None) -> PrivateKeys:
    """Create DIR (0700) with node.toml, node.key (0600) and a migrated node.db.

    Refuses a directory that already holds a key file: overwriting it would
    orphan the node's identity at the hub.
    """
    if (path / KEY_FILE).exists():
        raise ConfigError(f"{path / KEY_FILE} already exists; this directory is initialised")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} exists and is not a directory")
    try:
        if not path.exists():
            path.mkdir(mode=0o700, parents=True)
            # mkdir's mode is filtered by the umask; the case database lives here.
            os.chmod(path, 0o700)
        keys = keys or PrivateKeys.generate()
        config = path / CONFIG_FILE
        if not config.exists():
            config.write_text(default_config(name), encoding="utf-8")
        # Created with mode 0600, fsynced; an existing key file is never replaced.
        write_private_file(path / KEY_FILE, keys.to_bytes(), replace=False)
    except OSError as exc:
        raise ConfigError(f"cannot initialise {path}: {exc.strerror or exc}") from None
    open_database(path / DB_FILE).conn.close()
    return keys
