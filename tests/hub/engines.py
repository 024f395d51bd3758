"""The hub's two storage engines in tests: which, and a connection to either.

Fixtures that make a hub data directory take the `engine` fixture
(tests/conftest.py), parametrized over `ENGINES`, so each hub test runs
once on SQLite and once on a throwaway PostgreSQL database (`pg_url`,
tests/conftest.py). A test of something only one engine has (SQLite's file
damage, its pragmas, a full disk under SQLite) is marked `sqlite_only` and runs
on SQLite alone (`pytest_collection_modifyitems` in tests/conftest.py).
"""

from __future__ import annotations

import pytest

from hub.settings import HubSettings
from hub.storage.db import DbWorker, open_db
from hub.storage.engine import Db, SqliteDb

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
ENGINES = (SQLITE, POSTGRESQL)


def database_table(engine: str, request: pytest.FixtureRequest) -> str:
    """The `[database]` table of hub.toml for `engine` (empty for SQLite)."""
    if engine == SQLITE:
        return ""
    url = request.getfixturevalue("pg_url")
    return f'\n[database]\nurl = "{url}"\n'


def hub_db(settings: HubSettings) -> Db:
    """A connection to the hub's database, as the CLI in another process opens it."""
    return open_db(settings.db_path, settings.database.postgres_url)


def sqlite_db(worker: DbWorker) -> SqliteDb:
    """The SQLite connection of a server's database worker (tests of SQLite itself)."""
    assert worker.db is not None, "this test needs the SQLite engine"
    return worker.db
