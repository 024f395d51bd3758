"""What mbe-node creates is private to its user, whatever the shell's umask."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from demo.processes import free_port
from node.api.app import create_app
from node.storage.db import open_database
from tests.node.conftest import ApiNode
from tests.node.test_cli import _get


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _node(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *argv],
        capture_output=True,
        text=True,
        umask=0o022,
        check=False,
        timeout=60,
    )


def test_init_under_umask_022_creates_private_files(tmp_path: Path) -> None:
    """init makes the data dir 0700 and node.toml, node.key, node.db 0600 under umask 022."""
    data = tmp_path / "new" / "office"
    done = _node(["init", "--dir", str(data)])
    assert done.returncode == 0, done.stderr
    assert _mode(data) == 0o700
    files = {p.name: _mode(p) for p in data.iterdir()}
    assert set(files) >= {"node.toml", "node.key", "node.db"}
    assert files == dict.fromkeys(files, 0o600)
    assert done.stderr == ""


def test_init_into_an_open_directory_warns(tmp_path: Path) -> None:
    """An existing 0755 directory is kept, but init says to chmod it; its files are 0600."""
    data = tmp_path / "office"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    done = _node(["init", "--dir", str(data)])
    assert done.returncode == 0, done.stderr
    assert "chmod 700" in done.stderr
    assert {p.name: _mode(p) for p in data.iterdir()} == dict.fromkeys(
        ("node.toml", "node.key", "node.db"), 0o600
    )


def test_serve_creates_private_wal_files(tmp_path: Path) -> None:
    """While serve runs under umask 022, node.db-wal and node.db-shm are 0600."""
    data = tmp_path / "office"
    assert _node(["init", "--dir", str(data)]).returncode == 0
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "serve", "--dir", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        umask=0o022,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert _get(port, "/health") == 200
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
        wal = [data / "node.db-wal", data / "node.db-shm"]
        assert all(p.exists() for p in wal)
        assert [_mode(p) for p in wal] == [0o600, 0o600]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_old_world_readable_database_is_made_private(tmp_path: Path) -> None:
    """Opening a 0644 database (made before this fix) restricts it and its WAL to 0600."""
    path = tmp_path / "node.db"
    open_database(path).conn.close()
    path.chmod(0o644)
    db = open_database(path)
    try:
        assert _mode(path) == 0o600
        assert _mode(tmp_path / "node.db-wal") == 0o600
    finally:
        db.conn.close()


async def test_serving_makes_an_open_data_directory_private(
    api_node: ApiNode, aiohttp_client: Any
) -> None:
    """A data directory others can enter (0755) is 0700 once the API has started."""
    data_dir = api_node.settings.data_dir
    data_dir.chmod(0o755)
    client = await aiohttp_client(create_app(api_node.settings, deps=api_node.deps))
    assert (await client.get("/health")).status == 200
    assert _mode(data_dir) == 0o700
