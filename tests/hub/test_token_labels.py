"""A coordinator token can carry a label that `token list` shows (in process: fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import cli as hub_cli


def test_label_is_shown_by_token_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = str(tmp_path / "hub")
    assert hub_cli.main(["init", "--dir", data_dir, "--region", "Mittelfranken"]) == 0
    assert (
        hub_cli.main(["site", "add", "--dir", data_dir, "--name", "AWO Fürth", "--org", "AWO"]) == 0
    )
    capsys.readouterr()
    argv = ["token", "create", "--dir", data_dir, "--role", "coordinator", "--org", "AWO"]
    assert hub_cli.main([*argv, "--label", "Koordination AWO Mittelfranken"]) == 0
    token = capsys.readouterr().out.strip()
    assert hub_cli.main(["token", "list", "--dir", data_dir]) == 0
    listed = capsys.readouterr().out
    assert listed.splitlines()[0].split()[-1] == "LABEL"
    assert listed.splitlines()[1].endswith("Koordination AWO Mittelfranken")
    assert token not in listed


def test_a_bad_label_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = str(tmp_path / "hub")
    assert hub_cli.main(["init", "--dir", data_dir, "--region", "Mittelfranken"]) == 0
    capsys.readouterr()
    argv = ["token", "create", "--dir", data_dir, "--role", "coordinator", "--label", "x" * 81]
    assert hub_cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--label must be 1 to 80 printable characters" in err[0]
