"""The data directory every service has: a config file, a key file and a database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True)
class DataDir:
    """Base of a service's settings object: where its data directory is and the
    paths of its three files. Subclasses name the files (`node.toml`, `hub.key`, ...)."""

    data_dir: Path

    config_name: ClassVar[str]
    key_name: ClassVar[str]
    db_name: ClassVar[str]

    @property
    def config_path(self) -> Path:
        return self.data_dir / self.config_name

    @property
    def key_path(self) -> Path:
        return self.data_dir / self.key_name

    @property
    def db_path(self) -> Path:
        return self.data_dir / self.db_name
