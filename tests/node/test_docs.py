"""Documentation stays complete: every config key and command of the node is documented."""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from pathlib import Path

from node.cli import build_parser
from node.config import ApiSettings, ReferralSettings, RetentionSettings, parse_settings
from node.stats.settings import StatsSettings
from node.sync.settings import SyncSettings

ROOT = Path(__file__).resolve().parents[2]


def _config_keys() -> set[str]:
    """Every key NodeSettings takes from node.toml: a new setting must be documented."""
    keys = {"node.name", "log.level"}
    for table, settings in (
        ("api", ApiSettings),
        ("sync", SyncSettings),
        ("stats", StatsSettings),
        ("referrals", ReferralSettings),
        ("retention", RetentionSettings),
    ):
        keys |= {f"{table}.{f.name}" for f in dataclasses.fields(settings)}
    return keys


def test_example_config_has_every_key_and_loads() -> None:
    """deploy/node.toml.example sets every key and parses to the default settings."""
    text = (ROOT / "deploy" / "node.toml.example").read_text(encoding="utf-8")
    doc = tomllib.loads(text)
    present = {f"{table}.{key}" for table, values in doc.items() for key in values}
    assert present == _config_keys()
    settings = parse_settings(text, ROOT)
    assert settings.sync == SyncSettings()
    assert settings.api == ApiSettings()
    assert settings.stats == StatsSettings()
    assert settings.referrals == ReferralSettings()
    assert settings.retention == RetentionSettings()


def test_readme_documents_every_key() -> None:
    """The README's node.toml table names every config key."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### node.toml", 1)[1].split("\n### ", 1)[0]
    missing = sorted(k for k in _config_keys() if f"`{k}`" not in section and k not in section)
    assert missing == []


def test_docs_name_every_command() -> None:
    """docs/node.md shows every mbe-node subcommand this package defines."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    docs = (ROOT / "docs" / "node.md").read_text(encoding="utf-8")
    commands = set(getattr(sub, "choices", {}) or {})
    assert commands >= {"init", "serve", "token", "status"}
    assert sorted(c for c in commands - {"enroll"} if f"mbe-node {c}" not in docs) == []


def test_docs_name_every_subcommand() -> None:
    """docs/node.md shows every action of a command with actions (token list, token revoke, ...)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    docs = " ".join((ROOT / "docs" / "node.md").read_text(encoding="utf-8").split())
    wanted = set()
    for name, command in (getattr(sub, "choices", {}) or {}).items():
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                wanted |= {f"mbe-node {name} {a}" for a in action.choices}
    assert {"mbe-node token list", "mbe-node token revoke"} <= wanted
    assert sorted(w for w in wanted if w not in docs) == []
