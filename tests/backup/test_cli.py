"""`mbe-node backup|restore` and `mbe-hub backup|restore`: output, exit codes, one-line errors."""

from __future__ import annotations

import re
import stat
import time
from pathlib import Path

import pytest

from hub import cli as hub_cli
from node import cli as node_cli
from tests.backup.conftest import PASSPHRASE


def _errors(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.splitlines()


def test_node_backup_and_restore_commands(
    node_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The node commands write a 0600 archive, warn about keys and personal data, restore it."""
    out = tmp_path / "node.tar"
    argv = ["backup", "--dir", str(node_dir), "--out", str(out), "--unencrypted"]
    assert node_cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "NOT encrypted" in captured.out
    assert "PRIVATE KEYS" in captured.err
    assert "personal data" in captured.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert node_cli.main(["restore", "--from", str(out), "--dir", str(tmp_path / "new")]) == 0
    assert f"Next: mbe-node serve --dir {tmp_path / 'new'}" in capsys.readouterr().out
    assert (tmp_path / "new" / "node.key").read_bytes() == (node_dir / "node.key").read_bytes()


def test_hub_backup_and_restore_commands(
    hub_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hub commands back up and restore, and publish a directory version of at least now."""
    out = tmp_path / "hub.tar"
    assert hub_cli.main(["backup", "--dir", str(hub_dir), "--out", str(out), "--unencrypted"]) == 0
    assert "PRIVATE KEY" in capsys.readouterr().err
    before = int(time.time())
    assert hub_cli.main(["restore", "--from", str(out), "--dir", str(tmp_path / "new")]) == 0
    printed = re.search(r"published directory version (\d+) ", capsys.readouterr().out)
    assert printed is not None
    assert int(printed.group(1)) >= before


def test_encrypted_backup_through_the_cli(
    node_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--passphrase-file encrypts; restore without it fails in one line, with it succeeds."""
    phrase = tmp_path / "phrase"
    phrase.write_bytes(PASSPHRASE + b"\n")
    phrase.chmod(0o600)
    out = tmp_path / "node.enc"
    args = ["--passphrase-file", str(phrase)]
    assert node_cli.main(["backup", "--dir", str(node_dir), "--out", str(out), *args]) == 0
    assert "(encrypted" in capsys.readouterr().out
    assert node_cli.main(["restore", "--from", str(out), "--dir", str(tmp_path / "a")]) == 1
    assert _errors(capsys) == [f"mbe-node: error: {out} is encrypted; pass --passphrase-file"]
    assert node_cli.main(["restore", "--from", str(out), "--dir", str(tmp_path / "a"), *args]) == 0


def test_node_cli_errors_are_one_line(
    node_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every refusal is one `mbe-node: error:` line and exit status 1."""
    out = tmp_path / "b.tar"
    out.write_bytes(b"x")
    short = tmp_path / "short"
    short.write_text("geheim\n")
    short.chmod(0o600)
    shared = tmp_path / "shared"
    shared.write_bytes(PASSPHRASE)
    shared.chmod(0o644)
    clear = ["backup", "--unencrypted"]
    to_c = ["backup", "--dir", str(node_dir), "--out", str(tmp_path / "c")]
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar file" * 100)
    runs = [
        (["backup", "--dir", str(node_dir), "--out", str(out), "--unencrypted"], "already exists"),
        ([*clear, "--dir", str(tmp_path / "nope"), "--out", str(tmp_path / "c")], "not exist"),
        ([*clear, "--dir", str(node_dir), "--out", str(tmp_path / "no" / "c")], "not exist"),
        (
            ["backup", "--dir", str(node_dir), "--out", str(tmp_path / "c")],
            "encrypt it with --passphrase-file FILE (create one: umask 077;",
        ),
        (
            [*to_c, "--passphrase-file", str(shared)],
            "is open to other users (mode 0644); restrict it: chmod 600",
        ),
        (
            [
                "backup",
                "--dir",
                str(node_dir),
                "--out",
                str(tmp_path / "c"),
                "--passphrase-file",
                str(short),
            ],
            "shorter than 12",
        ),
        (["restore", "--from", str(tmp_path / "missing"), "--dir", str(tmp_path / "n")], "found"),
        (["restore", "--from", str(junk), "--dir", str(tmp_path / "n")], "damaged"),
        (["restore", "--from", str(junk), "--dir", str(node_dir)], "not empty"),
    ]
    for argv, message in runs:
        assert node_cli.main(argv) == 1, argv
        lines = _errors(capsys)
        assert len(lines) == 1, lines
        assert lines[0].startswith("mbe-node: error: ")
        assert message in lines[0]
    assert out.read_bytes() == b"x"
    assert not (tmp_path / "n").exists()
    assert not (tmp_path / "c").exists()


def test_hub_cli_errors_are_one_line(
    hub_dir: Path, node_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hub's refusals are one `mbe-hub: error:` line too, e.g. a node archive."""
    node_archive = tmp_path / "node.tar"
    argv = ["backup", "--dir", str(node_dir), "--out", str(node_archive), "--unencrypted"]
    assert node_cli.main(argv) == 0
    capsys.readouterr()
    runs = [
        (["restore", "--from", str(node_archive), "--dir", str(tmp_path / "h")], "a node backup"),
        (
            ["backup", "--dir", str(hub_dir), "--out", str(node_archive), "--unencrypted"],
            "already exists",
        ),
        (["backup", "--dir", str(hub_dir), "--out", str(tmp_path / "h.tar")], "--unencrypted"),
        (["restore", "--from", str(node_archive), "--dir", str(hub_dir)], "not empty"),
    ]
    for argv, message in runs:
        assert hub_cli.main(argv) == 1, argv
        lines = _errors(capsys)
        assert len(lines) == 1, lines
        assert lines[0].startswith("mbe-hub: error: ")
        assert message in lines[0]
    assert not (tmp_path / "h").exists()


def test_missing_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --out or --from the commands stop with argparse's usage error (status 2)."""
    for main, argv in (
        (node_cli.main, ["backup", "--dir", "x"]),
        (node_cli.main, ["restore", "--dir", "x"]),
        (hub_cli.main, ["backup", "--dir", "x"]),
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert "required" in capsys.readouterr().err


def test_hub_backup_refuses_a_postgresql_hub_and_names_the_tools(
    hub_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An archive of the data directory holds no PostgreSQL data: refused in one line."""
    config = hub_dir / "hub.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[database]\nurl = "postgresql://mbe_hub@127.0.0.1:1/mbe_hub"\n',
        encoding="utf-8",
    )
    out = tmp_path / "hub.tar"
    assert hub_cli.main(["backup", "--dir", str(hub_dir), "--out", str(out), "--unencrypted"]) == 1
    errors = _errors(capsys)
    assert len(errors) == 1
    assert "pg_dump" in errors[0]
    assert not out.exists()
