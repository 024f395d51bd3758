"""`mbe-hub` commands and the one-line errors users see."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from protocol.enrollment import EnrollmentCode
from tests.hub.proc import ROOT, run_cli, site_code


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "hub"
    out = run_cli("init", "--dir", str(d), "--region", "Köln", "--url", "https://hub.example.org")
    assert out.returncode == 0, out.stderr
    return d


def _one_line_error(out: object) -> str:
    stderr: str = out.stderr  # type: ignore[attr-defined]  # CompletedProcess[str]
    assert out.returncode in (1, 2)  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_init_creates_config_private_key_and_database(data_dir: Path) -> None:
    """init writes hub.toml, a 0600 64-byte key and a migrated database."""
    key = data_dir / "hub.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes()) == 64
    assert 'region = "Köln"' in (data_dir / "hub.toml").read_text()
    with sqlite3.connect(data_dir / "hub.db") as conn:
        assert conn.execute("SELECT min(version) FROM schema_version").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM directory_versions").fetchone() == (1,)


def test_init_twice_is_refused(data_dir: Path) -> None:
    """A second init on the same directory fails and keeps the existing keys."""
    before = (data_dir / "hub.key").read_bytes()
    line = _one_line_error(run_cli("init", "--dir", str(data_dir)))
    assert "already" in line
    assert (data_dir / "hub.key").read_bytes() == before


def test_site_add_prints_id_code_expiry_and_fingerprint(data_dir: Path) -> None:
    """site add prints the node id and a valid code naming this hub's fingerprint."""
    out = run_cli(
        "site", "add", "--dir", str(data_dir), "--name", "Caritas Köln-Mülheim",
        "--org", "Caritas", "--service", "mbe", "--service", "jmd",
        "--language", "de", "--language", "tr", "--area", "Köln",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    fields = {k.strip(): v.strip() for k, v in (ln.split(":", 1) for ln in out.stdout.splitlines())}
    assert fields["node id"] == "caritas-koeln-muelheim"
    code = EnrollmentCode.parse(fields["enrollment code"])
    assert code.fingerprint.hex()  # parses, check digits hold
    assert "UTC" in fields["code expires"]
    assert len(fields["hub fingerprint"]) == 19
    listing = run_cli("site", "list", "--dir", str(data_dir))
    assert "caritas-koeln-muelheim" in listing.stdout
    assert "pending" in listing.stdout


def test_site_add_refuses_unknown_service(data_dir: Path) -> None:
    """An unknown service code is one clear line naming the known ones."""
    line = _one_line_error(
        run_cli(
            "site",
            "add",
            "--dir",
            str(data_dir),
            "--name",
            "X Y",
            "--org",
            "O",
            "--service",
            "astrology",
        )
    )
    assert "astrology" in line
    assert "jobcenter" in line


def test_site_revoke_and_unknown_site(data_dir: Path) -> None:
    """revoke marks the site revoked; revoking an unknown id is one line, exit 1."""
    run_cli("site", "add", "--dir", str(data_dir), "--name", "Revoke Me", "--org", "O")
    out = run_cli("site", "revoke", "--dir", str(data_dir), "revoke-me")
    assert out.returncode == 0, out.stderr
    assert "revoked" in run_cli("site", "list", "--dir", str(data_dir)).stdout
    line = _one_line_error(run_cli("site", "revoke", "--dir", str(data_dir), "no-such-site"))
    assert "no-such-site" in line


def test_token_create_prints_once_and_stores_a_hash(data_dir: Path) -> None:
    """The token is printed; the database holds only its SHA-256."""
    import hashlib

    site_code(data_dir, "AWO Fürth")  # an organisation is known once one of its sites is
    out = run_cli(
        "token", "create", "--dir", str(data_dir), "--role", "coordinator", "--org", "AWO"
    )
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token.startswith("mbeh_")
    raw = b"".join(p.read_bytes() for p in data_dir.iterdir())
    assert token.encode() not in raw
    with sqlite3.connect(data_dir / "hub.db") as conn:
        row = conn.execute("SELECT token_hash, role, org FROM tokens").fetchone()
    assert row == (hashlib.sha256(token.encode()).digest(), "coordinator", "AWO")


def test_missing_dir_is_one_line(tmp_path: Path) -> None:
    """Commands on a directory that does not exist fail with one line."""
    line = _one_line_error(run_cli("site", "list", "--dir", str(tmp_path / "absent")))
    assert "does not exist" in line


def test_bad_config_is_one_line(data_dir: Path) -> None:
    """Broken TOML, unknown keys and wrong types are each one line naming the problem."""
    config = data_dir / "hub.toml"
    good = config.read_text()
    config.write_text(good + "\n[relay]\nmax_batch = 'many'\n")
    assert "not valid TOML" in _one_line_error(run_cli("site", "list", "--dir", str(data_dir)))
    config.write_text(good.replace("[relay]", "[relay]\nmax_batch = 'many'"))
    assert "relay.max_batch" in _one_line_error(run_cli("site", "list", "--dir", str(data_dir)))
    config.write_text(good + "\ncolour = 'blue'\n")
    line = _one_line_error(run_cli("serve", "--dir", str(data_dir)))
    assert "colour" in line


def test_unsafe_key_file_is_refused(data_dir: Path) -> None:
    """A key file readable by others stops the hub with a chmod hint."""
    (data_dir / "hub.key").chmod(0o644)
    assert "chmod 600" in _one_line_error(run_cli("site", "list", "--dir", str(data_dir)))


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    """A missing required option is an argparse usage error with exit code 2."""
    out = run_cli("site", "add", "--dir", str(tmp_path))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr


HOSTILE_ARGS = [
    ("serve", "--port", "99999"),
    ("serve", "--port", "-1"),
    ("serve", "--port", "²"),
    ("serve", "--port", "eighty"),
    ("init", "--region", "a\nb"),
    ("init", "--region", "a\x7fb"),
    ("init", "--region", 'a"\n[relay]\nmax_batch = 1'),
    ("init", "--region", "a\udce4"),
    ("init", "--url", "https://hub.example.org\nlog_level = 'debug'"),
    ("init", "--url", "https://hub example.org"),
    ("init", "--url", "ftp://hub.example.org"),
]


@pytest.mark.parametrize("args", HOSTILE_ARGS, ids=[repr(a[-1]) for a in HOSTILE_ARGS])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Bad ports, control characters or non-UTF-8 text: one line, no traceback, no files."""
    target = tmp_path / "hub"
    out = run_cli(args[0], "--dir", str(target), *args[1:])
    assert "mbe-hub" in _one_line_error(out)
    assert not target.exists()


def test_token_org_with_control_characters_is_refused(data_dir: Path) -> None:
    """An --org with a newline would break `token list`: refused in one line."""
    out = run_cli(
        "token", "create", "--dir", str(data_dir), "--role", "coordinator", "--org", "A\nB"
    )
    assert "printable" in _one_line_error(out)


def test_files_are_private_whatever_the_callers_umask(tmp_path: Path) -> None:
    """Under umask 022 (sudo -u outside systemd) every file init and site add make is 0600."""
    target = tmp_path / "hub"
    for args in (
        ["init", "--dir", str(target)],
        ["site", "add", "--dir", str(target), "--name", "Umask Office", "--org", "AWO"],
    ):
        out = subprocess.run(
            [sys.executable, "-m", "hub.cli", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            preexec_fn=lambda: os.umask(0o022),
        )
        assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in target.iterdir()}
    assert {"hub.toml", "hub.key", "hub.db"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes


def test_token_for_an_unknown_organisation_is_refused(data_dir: Path) -> None:
    """--org must name an organisation of some site; the error lists them and the near miss."""
    args = ("token", "create", "--dir", str(data_dir), "--role", "coordinator", "--org")
    assert "no site added yet" in _one_line_error(run_cli(*args, "Caritas"))
    site_code(data_dir, "AWO Fürth")
    line = _one_line_error(run_cli(*args, "awo"))
    assert "did you mean 'AWO'?" in line
    assert "known organisations: 'AWO'" in line
    assert run_cli(*args, "AWO").returncode == 0
    with sqlite3.connect(data_dir / "hub.db") as conn:
        assert conn.execute("SELECT org FROM tokens").fetchall() == [("AWO",)]
