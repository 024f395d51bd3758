"""User-caused failures of mbe-node end with one clear line and a non-zero exit, no traceback."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

import pytest

from node.cli import main
from node.config import default_config, load_settings
from protocol.enrollment import EnrollmentCode
from tests.node.conftest import HUB


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def _init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    data = tmp_path / "office"
    assert main(["init", "--dir", str(data)]) == 0
    capsys.readouterr()
    return data


def _one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("mbe-node: error: ") and "Traceback" not in err


def test_a_locked_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """token create while another process holds the write lock: one line, exit 1."""
    data = _init(tmp_path, capsys)
    holder = sqlite3.connect(data / "node.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        code, err = _run(["token", "create", "--dir", str(data), "--name", "app"], capsys)
    finally:
        holder.close()
    assert code == 1
    assert _one_line(err)
    assert "database is locked" in err


def test_a_corrupt_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A node.db that is not a database: one line naming the problem, exit 1."""
    data = _init(tmp_path, capsys)
    for suffix in ("", "-wal", "-shm"):
        (data / f"node.db{suffix}").unlink(missing_ok=True)
    (data / "node.db").write_bytes(b"this is not a database" * 100)
    (data / "node.db").chmod(0o600)
    code, err = _run(["status", "--dir", str(data)], capsys)
    assert code == 1
    assert _one_line(err)
    assert "not a database" in err


@pytest.mark.parametrize(
    ("hub", "expect"),
    [
        ("http://[::1", "not a valid URL"),
        ("http://127.0.0.1:99999", "not a valid URL"),
        ("http://127.0.0.1:0", "between 1 and 65535"),
        ("http://hub example", "spaces"),
    ],
    ids=["ipv6-unclosed", "port-too-large", "port-zero", "space"],
)
def test_a_bad_hub_url_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], hub: str, expect: str
) -> None:
    """enroll with an unparsable hub URL fails before any request, in one line."""
    data = _init(tmp_path, capsys)
    code_text = EnrollmentCode.create(HUB.public, 12345).text()
    code, err = _run(["enroll", "--dir", str(data), "--hub", hub, "--code", code_text], capsys)
    assert code == 1
    assert _one_line(err)
    assert expect in err


@pytest.mark.parametrize("name", ["a\nb", "a\rb", "tab\there", "a\u2028b", "bad\udcffbyte"])
def test_init_refuses_a_name_that_is_not_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """init --name with a control character or undecodable byte: one line, nothing written."""
    data = tmp_path / "office"
    code, err = _run(["init", "--dir", str(data), "--name", name], capsys)
    assert code == 1
    assert _one_line(err)
    assert not (data / "node.toml").exists()


@pytest.mark.parametrize("name", ['Caritas "Süd"', "back\\slash", "a\nb\x7f", "'''"])
def test_default_config_is_valid_toml_for_any_name(tmp_path: Path, name: str) -> None:
    """Whatever the name holds, node.toml parses and gives the name back unchanged."""
    (tmp_path / "node.toml").write_text(default_config(name), encoding="utf-8")
    assert tomllib.loads(default_config(name))["node"]["name"] == name
    assert load_settings(tmp_path).name == name


def test_serve_port_out_of_range_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """serve --port 99999 is refused by argparse (exit 2), not an OverflowError traceback."""
    data = _init(tmp_path, capsys)
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--dir", str(data), "--port", "99999"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "not between 0 and 65535" in err
    assert "Traceback" not in err
