"""A pending site gets a new enrollment code without losing its node id; a second
site with an existing name is refused unless asked for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub import cli as hub_cli


def _init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    data_dir = str(tmp_path / "hub")
    assert hub_cli.main(["init", "--dir", data_dir, "--region", "Mittelfranken"]) == 0
    capsys.readouterr()
    return data_dir


def _add(data_dir: str, *extra: str) -> int:
    argv = ["site", "add", "--dir", data_dir, "--name", "AWO Fürth", "--org", "AWO"]
    return hub_cli.main([*argv, *extra])


def _field(out: str, name: str) -> str:
    found = re.search(rf"^{name}:\s+(\S+)", out, re.MULTILINE)
    assert found is not None, out
    return found.group(1)


def test_a_new_code_keeps_the_node_id_and_retires_the_old_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = _init(tmp_path, capsys)
    assert _add(data_dir) == 0
    first = capsys.readouterr().out
    node_id = _field(first, "node id")
    assert hub_cli.main(["site", "code", "--dir", data_dir, node_id]) == 0
    second = capsys.readouterr().out
    assert _field(second, "node id") == node_id
    assert _field(second, "enrollment code") != _field(first, "enrollment code")
    assert "1 unused code(s) no longer work" in second
    assert hub_cli.main(["site", "list", "--dir", data_dir]) == 0
    assert capsys.readouterr().out.count("AWO Fürth") == 1


def test_a_duplicate_name_is_refused_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = _init(tmp_path, capsys)
    assert _add(data_dir) == 0
    node_id = _field(capsys.readouterr().out, "node id")
    assert _add(data_dir) == 1
    err = capsys.readouterr().err
    assert f"mbe-hub site code --dir DIR {node_id}" in err
    assert "--duplicate-name" in err
    assert _add(data_dir, "--duplicate-name") == 0
    assert _field(capsys.readouterr().out, "node id") == f"{node_id}-2"


def test_no_new_code_for_an_unknown_or_revoked_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = _init(tmp_path, capsys)
    assert hub_cli.main(["site", "code", "--dir", data_dir, "nobody"]) == 1
    assert "no site with node id 'nobody'" in capsys.readouterr().err
    assert _add(data_dir) == 0
    node_id = _field(capsys.readouterr().out, "node id")
    assert hub_cli.main(["site", "revoke", "--dir", data_dir, node_id]) == 0
    capsys.readouterr()
    assert hub_cli.main(["site", "code", "--dir", data_dir, node_id]) == 1
    assert "is revoked: only a site that has not enrolled yet" in capsys.readouterr().err
