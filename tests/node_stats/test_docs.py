"""The [stats] settings are documented, written by init and validated with one-line errors."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from node.config import default_config, parse_settings
from node.errors import ConfigError
from node.stats.settings import StatsSettings

ROOT = Path(__file__).resolve().parents[2]
KEYS = {f"stats.{f.name}" for f in dataclasses.fields(StatsSettings)}


def test_readme_documents_every_stats_key() -> None:
    """The README's node.toml table names every [stats] key."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### node.toml", 1)[1].split("\n### ", 1)[0]
    assert sorted(k for k in KEYS if f"`{k}`" not in section) == []


def test_init_config_sets_every_stats_key_at_its_default() -> None:
    """The node.toml written by init has every [stats] key and parses to the defaults."""
    text = default_config("Beratungsstelle")
    assert {f"stats.{k}" for k in tomllib.loads(text)["stats"]} == KEYS
    assert parse_settings(text, ROOT).stats == StatsSettings()


def test_stats_settings_parse_and_refuse_with_one_line() -> None:
    """Values are read from [stats]; wrong ones stop the node with one line naming the key."""
    s = parse_settings(
        '[stats]\nauto_submit = false\nperiods = ["quarter"]\nsubmit_after_days = 10\n', ROOT
    ).stats
    assert (s.auto_submit, s.periods, s.submit_after_days) == (False, ("quarter",), 10)
    bad = {
        'periods = ["week"]': "stats.periods",
        "periods = 3": "[stats].periods",
        "submit_after_days = -1": "stats.submit_after_days",
        'auto_submit = "yes"': "[stats].auto_submit",
        "unknown = 1": "[stats].unknown",
    }
    for line, named in bad.items():
        with pytest.raises(ConfigError) as exc:
            parse_settings(f"[stats]\n{line}\n", ROOT)
        assert named in str(exc.value)
        assert "\n" not in str(exc.value)


def test_statistics_doc_has_the_node_side() -> None:
    """docs/statistics.md defines "active" and the cell subset for the node side."""
    doc = (ROOT / "docs" / "statistics.md").read_text(encoding="utf-8")
    node = doc.split("## Node side", 1)[1]
    assert "open on at least one day" in node
    assert "except pairs" in node
