"""The PostgreSQL fixtures of tests/conftest.py and tests/pg.py behind them: each test
gets its own empty database in a cluster that runs unprivileged, listens on loopback
only, and does not outlive its owner."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import pg

ROOT = Path(__file__).resolve().parents[2]
EMPTY = (
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
)


def test_a_database_accepts_connections(pg_cluster: pg.Cluster, pg_url: str) -> None:
    name = pg_url.rsplit("/", 1)[1]
    assert pg_url == f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/{name}"
    got = pg_cluster.psql(pg_url, "SELECT current_database(), current_user")
    assert got == f"{name}|postgres"


def test_psycopg_connects(pg_url: str) -> None:
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed yet")
    with psycopg.connect(pg_url) as connection:
        connection.execute("CREATE TABLE numbers (n integer PRIMARY KEY)")
        connection.execute("INSERT INTO numbers VALUES (1), (2), (3)")
        assert connection.execute("SELECT sum(n) FROM numbers").fetchone() == (6,)


def test_two_databases_are_different_and_empty(pg_cluster: pg.Cluster, pg_url: str) -> None:
    other = pg_cluster.create_database()
    try:
        assert other != pg_url
        assert pg_cluster.psql(pg_url, EMPTY) == pg_cluster.psql(other, EMPTY) == "0"
        pg_cluster.psql(pg_url, "CREATE TABLE only_here (n integer)")
        assert pg_cluster.psql(pg_url, EMPTY) != "0"
        assert pg_cluster.psql(other, EMPTY) == "0"
    finally:
        pg_cluster.drop_database(other)


def test_a_dropped_database_goes(pg_cluster: pg.Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_cluster, "drop_batch", 1)
    url = pg_cluster.create_database()
    name = url.rsplit("/", 1)[1]

    def listed() -> bool:
        return name in pg_cluster.psql(pg_cluster.url(), "SELECT datname FROM pg_database").split()

    assert listed()
    pg_cluster.drop_database(url)
    _wait_for(lambda: not listed(), "the drop")


def test_the_server_runs_unprivileged(pg_cluster: pg.Cluster) -> None:
    pid = pg_cluster.postmaster_pid()
    assert pid is not None
    server_uid = _uid_of(pid)
    owners = {path.stat().st_uid for path in pg_cluster.data.rglob("*")}
    owners.add(pg_cluster.directory.stat().st_uid)
    assert owners == {server_uid}
    if os.geteuid() == 0:
        assert server_uid != 0
        assert pg_cluster.server_user is not None
        assert pg_cluster.server_user.pw_uid == server_uid
    else:
        assert server_uid == os.geteuid()


def test_the_server_listens_on_loopback_only(pg_cluster: pg.Cluster) -> None:
    assert pg_cluster.psql(pg_cluster.url(), "SHOW listen_addresses") == "127.0.0.1"
    assert _listening(pg_cluster.port) == {"127.0.0.1"}
    assert (pg_cluster.directory / f".s.PGSQL.{pg_cluster.port}").is_socket()


def test_stop_ends_the_server_and_removes_its_directory() -> None:
    cluster = pg.Cluster()
    pid = cluster.postmaster_pid()
    assert pid is not None
    assert _running(pid)
    cluster.stop()
    assert not _running(pid)
    _wait_for(lambda: not cluster.directory.exists(), "its directory to go")
    cluster.stop()  # a second time does nothing


def test_no_server_outlives_its_owner_killed() -> None:
    """The owning process (an xdist worker, say) dies by SIGKILL: no finalizer, no
    atexit hook runs; the watchdog stops the server and removes the directory."""
    owner = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal; from tests import pg; cluster = pg.Cluster();"
            " print(cluster.postmaster_pid(), cluster.directory, flush=True);"
            " os.kill(os.getpid(), signal.SIGKILL)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert owner.returncode == -signal.SIGKILL, owner.stderr
    pid_text, directory = owner.stdout.split()
    pid = int(pid_text)
    _wait_for(lambda: not _running(pid), "the server to stop")
    _wait_for(lambda: not Path(directory).exists(), "its directory to go")


def test_available_names_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pg, "DEBIAN_ROOT", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    reason = pg.available()
    assert reason is not None
    assert "PostgreSQL is not installed" in reason
    assert "postgresql" in reason
    with pytest.raises(pg.PgError, match="not installed"):
        pg.Cluster()


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)


def _uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    return int(line.split()[1])


def _running(pid: int) -> bool:
    """Whether the process exists and is no zombie (one the container's init has not
    reaped yet has ended all the same)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _listening(port: int) -> set[str]:
    """The addresses with a TCP socket listening on `port`, from /proc/net/tcp{,6}."""
    addresses: set[str] = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # the kernel prints each 32-bit word of the address in host (little-endian) order
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            addresses.add(socket.inet_ntop(family, words))
    return addresses
