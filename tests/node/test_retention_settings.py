"""`[retention]` in node.toml: years 1 to 30, default 3; anything else is refused by name."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from node.config import RetentionSettings, default_config, load_settings, parse_settings
from node.datadir import init_data_dir
from node.errors import ConfigError


def _parse(value: str) -> RetentionSettings:
    return parse_settings(f"[retention]\nyears = {value}\n", Path(".")).retention


def test_missing_table_or_key_means_three_years() -> None:
    assert parse_settings("", Path(".")).retention == RetentionSettings(years=3)
    assert parse_settings("[retention]\n", Path(".")).retention.years == 3


@pytest.mark.parametrize("years", [1, 3, 10, 30])
def test_years_in_range_are_taken(years: int) -> None:
    assert _parse(str(years)).years == years


@pytest.mark.parametrize("value", ["0", "31", "-1", "1000"])
def test_years_out_of_range_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"\[retention\]\.years must be between 1 and 30"):
        _parse(value)


@pytest.mark.parametrize("value", ['"3"', "true", "false", "3.0", "nan", "inf", "[3]"])
def test_years_of_another_type_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"\[retention\]\.years must be of type int"):
        _parse(value)


def test_unknown_key_in_the_table_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown key \[retention\]\.days"):
        parse_settings("[retention]\ndays = 30\n", Path("."))


def test_settings_built_in_code_refuse_bools_and_floats_too() -> None:
    with pytest.raises(ConfigError, match="whole number"):
        RetentionSettings(years=True)
    with pytest.raises(ConfigError, match="whole number"):
        RetentionSettings(years=3.0)  # type: ignore[arg-type]


def test_init_writes_the_table_at_its_default(tmp_path: Path) -> None:
    assert tomllib.loads(default_config("AWO Fürth"))["retention"] == {"years": 3}
    init_data_dir(tmp_path / "office", "AWO Fürth")
    assert load_settings(tmp_path / "office").retention == RetentionSettings()


def test_a_refusal_names_the_file(tmp_path: Path) -> None:
    init_data_dir(tmp_path / "office", "AWO Fürth")
    path = tmp_path / "office" / "node.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("years = 3", "years = 0"))
    with pytest.raises(ConfigError, match=r"^node\.toml: \[retention\]\.years"):
        load_settings(tmp_path / "office")
