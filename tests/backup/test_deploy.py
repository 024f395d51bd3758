"""deploy/: backup units run the real command and are hardened; the Containerfile is complete."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from hub.cli import build_parser as hub_parser
from node import backup as node_backup
from node.cli import build_parser as node_parser
from tests.backup.conftest import PASSPHRASE

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def unit(path: Path) -> dict[str, list[str]]:
    """Key -> values of a systemd unit file (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def _unescape(command: str) -> str:
    """What systemd hands to the program: `$$` is `$`, `%%` is `%`."""
    return command.replace("$$", "$").replace("%%", "%")


@pytest.mark.parametrize("kind", ["node", "hub"])
def test_timer_runs_the_backup_daily_and_catches_up(kind: str) -> None:
    """The timer fires daily with Persistent=true, and its service exists."""
    timer = unit(DEPLOY / f"mbe-{kind}-backup.timer")
    assert timer["OnCalendar"] == ["daily"]
    assert timer["Persistent"] == ["true"]
    assert timer["WantedBy"] == ["timers.target"]
    assert (DEPLOY / f"mbe-{kind}-backup.service").is_file()


@pytest.mark.parametrize("kind", ["node", "hub"])
def test_backup_service_is_at_least_as_hardened_as_the_service(kind: str) -> None:
    """Every hardening setting of the long-running unit is in the backup unit, plus no network."""
    service = unit(DEPLOY / f"{kind}.service")
    backup = unit(DEPLOY / f"mbe-{kind}-backup.service")
    kept = {
        k: v
        for k, v in service.items()
        if k.startswith(("Protect", "Private", "Restrict", "System", "Lock", "Memory", "No"))
        or k in {"UMask", "CapabilityBoundingSet", "AmbientCapabilities", "User", "RemoveIPC"}
    }
    kept.pop("RestrictAddressFamilies")
    for key, values in kept.items():
        assert backup.get(key) == values, key
    assert backup["RestrictAddressFamilies"] == ["AF_UNIX"]
    assert backup["PrivateNetwork"] == ["yes"]
    assert backup["Type"] == ["oneshot"]


def _run_unit_command(command: str, kind: str, data: Path, backups: Path, creds: Path) -> None:
    command = _unescape(command)
    command = command.replace(f"/opt/mbe-sync/bin/mbe-{kind}", str(BIN / f"mbe-{kind}"))
    command = command.replace(f"/var/lib/mbe-{kind}", str(data))
    command = command.replace(f"/var/backups/mbe-{kind}", str(backups))
    env = {**os.environ, "CREDENTIALS_DIRECTORY": str(creds)}
    argv = shlex.split(command)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def test_node_backup_unit_command_makes_a_restorable_encrypted_backup(
    node_dir: Path, tmp_path: Path
) -> None:
    """ExecStart (as systemd would run it) writes an encrypted 0600 backup; ExecStartPost prunes."""
    backup = unit(DEPLOY / "mbe-node-backup.service")
    creds, backups = tmp_path / "creds", tmp_path / "backups"
    creds.mkdir()
    backups.mkdir()
    (creds / "backup-passphrase").write_bytes(PASSPHRASE + b"\n")
    (creds / "backup-passphrase").chmod(0o400)  # as systemd hands a credential over
    old = backups / "node-20200101-000000.tar.enc"
    old.write_bytes(b"old")
    os.utime(old, (time.time() - 20 * 86400,) * 2)
    (cred,) = backup["LoadCredential"]
    assert cred.startswith("backup-passphrase:/etc/")
    _run_unit_command(backup["ExecStart"][0], "node", node_dir, backups, creds)
    _run_unit_command(backup["ExecStartPost"][0], "node", node_dir, backups, creds)
    (made,) = list(backups.iterdir())
    assert re.fullmatch(r"node-\d{8}-\d{6}\.tar\.enc", made.name)
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    node_backup.restore(made, tmp_path / "restored", passphrase=PASSPHRASE)
    assert (tmp_path / "restored" / "node.key").read_bytes() == (node_dir / "node.key").read_bytes()


def test_hub_backup_unit_command_makes_a_backup(hub_dir: Path, tmp_path: Path) -> None:
    """The hub unit's ExecStart runs `mbe-hub backup` with the credential as passphrase."""
    backup = unit(DEPLOY / "mbe-hub-backup.service")
    creds, backups = tmp_path / "creds", tmp_path / "backups"
    creds.mkdir()
    backups.mkdir()
    (creds / "backup-passphrase").write_bytes(PASSPHRASE)
    (creds / "backup-passphrase").chmod(0o400)  # as systemd hands a credential over
    _run_unit_command(backup["ExecStart"][0], "hub", hub_dir, backups, creds)
    (made,) = list(backups.iterdir())
    assert made.name.startswith("hub-")
    assert made.read_bytes().startswith(b"MBE-BACKUP-ENCRYPTED-1\n")


def _containerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (DEPLOY / "Containerfile").read_text(encoding="utf-8"))
    rows = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            rows.append((word.upper(), rest.strip()))
    return rows


def test_containerfile_copies_everything_the_package_needs() -> None:
    """Every COPY source exists, and every package pyproject installs is copied."""
    copied: set[str] = set()
    for word, rest in _containerfile():
        if word == "COPY" and not rest.startswith("--from"):
            *sources, _dest = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                copied.add(source.rstrip("/"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = project["tool"]["setuptools"]
    assert "py-modules" not in setuptools  # every shared module lives in a package
    packages = {p.rstrip("*") for p in setuptools["packages"]["find"]["include"]}
    assert packages >= {"protocol", "support", "node", "hub"}
    assert packages | {"pyproject.toml", "README.md"} <= copied


def test_container_images_run_as_a_user_with_a_data_volume() -> None:
    """Both final stages run the CLI as a non-root user, with /data as volume and valid CMD."""
    rows = _containerfile()
    stages: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for word, rest in rows:
        if word == "FROM":
            current = rest.split(" AS ")[-1].strip()
        stages.setdefault(current, []).append((word, rest))
    base = dict(stages["base"])
    assert base["USER"] == "mbe"
    assert base["VOLUME"] == '["/data"]'
    for kind, parser in (("hub", hub_parser()), ("node", node_parser())):
        stage = dict(stages[kind])
        assert stage["FROM"] == f"base AS {kind}"
        assert stage["ENTRYPOINT"] == f'["mbe-{kind}"]'
        cmd = [part.strip(' "') for part in stage["CMD"].strip("[]").split(",")]
        args = parser.parse_args(cmd)
        assert args.command == "serve"
        assert args.dir in ("/data", Path("/data"))
