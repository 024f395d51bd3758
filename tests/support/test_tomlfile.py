"""Config files: one-line errors naming the file; values written read back exactly."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support.datadir import DataDir
from support.tomlfile import TomlFileError, parse, read_text, toml_string


@given(st.text())
def test_toml_string_reads_back_as_the_same_value(value: str) -> None:
    """Quotes, backslashes and control characters are escaped; the value survives."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        return  # lone surrogates cannot be written as UTF-8 at all
    assert tomllib.loads(f"v = {toml_string(value)}\n")["v"] == value


def test_a_missing_file_names_the_file_and_the_hint(tmp_path: Path) -> None:
    """A missing config says where it was looked for and how to make one."""
    with pytest.raises(TomlFileError, match=r"x\.toml not found \(run mbe-x init\)"):
        read_text(tmp_path / "x.toml", missing_hint="run mbe-x init")


def test_unreadable_and_invalid_files_are_one_line(tmp_path: Path) -> None:
    """Bytes that are not UTF-8, and text that is not TOML, each give one line."""
    (tmp_path / "x.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(TomlFileError, match="cannot read"):
        read_text(tmp_path / "x.toml", missing_hint="")
    with pytest.raises(TomlFileError, match=r"x\.toml: not valid TOML") as err:
        parse("a = [1,\n", "x.toml")
    assert "\n" not in str(err.value)


def test_data_dir_paths_come_from_the_subclass_names(tmp_path: Path) -> None:
    """A settings class names its three files once; the paths follow."""

    class Settings(DataDir):
        config_name = "s.toml"
        key_name = "s.key"
        db_name = "s.db"

    s = Settings(data_dir=tmp_path)
    assert (s.config_path, s.key_path, s.db_path) == (
        tmp_path / "s.toml",
        tmp_path / "s.key",
        tmp_path / "s.db",
    )
