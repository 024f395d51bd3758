"""Settings loading and schema migrations."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import ConfigError, StorageError
from hub.settings import HubSettings, load_settings
from hub.storage import db as dbmod
from hub.storage.db import connect, load_migrations, schema_version


def test_migrations_are_numbered_and_applied_once(tmp_path: Path) -> None:
    """Every shipped migration is applied in order once and recorded in schema_version."""
    migrations = load_migrations()
    assert migrations[0].name.startswith("0001_")
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})
    db = connect(tmp_path / "a.db")
    assert schema_version(db) == migrations[-1].version
    assert dbmod.migrate(db) == []
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sites", "queue", "relay_log", "nonces", "tokens", "audit_log"} <= tables
    db.close()


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    """A database written by a newer hub (higher schema version) is not touched."""
    db = connect(tmp_path / "b.db")
    db.execute("INSERT INTO schema_version VALUES (9999, '9999_future.sql', 0)")
    db.close()
    with pytest.raises(StorageError, match="newer"):
        connect(tmp_path / "b.db")


def test_settings_defaults_and_errors(tmp_path: Path) -> None:
    """A minimal config loads with defaults; a bad value names its key."""
    (tmp_path / "hub.toml").write_text('region = "R"\npublic_url = "https://h.example"\n')
    s = load_settings(tmp_path)
    assert s == HubSettings(data_dir=tmp_path, region="R", public_url="https://h.example")
    assert s.enrollment.code_ttl == 86400
    (tmp_path / "hub.toml").write_text('region = "R"\n[auth]\nmax_skew = 5\n')
    with pytest.raises(ConfigError, match=r"auth\.max_skew"):
        load_settings(tmp_path)
    (tmp_path / "hub.toml").write_text("[server]\nport = true\n")
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_settings(tmp_path)
