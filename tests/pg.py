"""A throwaway PostgreSQL cluster for tests: its own directory, port and server process.

`Cluster()` runs initdb in a new temporary directory, starts the server with
`pg_ctl -w start` on 127.0.0.1 and a port from `tests.ports.reserved_port()` (unix
sockets and the log file in that directory too), and `stop()` stops it with
`pg_ctl -m immediate stop` and has the directory removed. `create_database()` hands out
a fresh empty database (copied from template0) and returns its URL; the root
conftest's `pg_cluster` and `pg_url` fixtures are built on it.

The server is the real thing, fsync on: tests of a storage backend see the
durability they would see in production. Only what makes no difference to a test
is changed: no password (trust, reachable from this machine only), quiet logging.

The binaries are Debian's (`/usr/lib/postgresql/<N>/bin/`, the newest N; Debian puts
no initdb on PATH), else those of an initdb on PATH. PostgreSQL refuses to run as
root, and CI runs as root: then initdb, pg_ctl and so the server run as the system
user `mbe-test` (created here with useradd if missing; `nobody` where there is no
useradd) through runuser or setpriv, and the directory is handed to that user.

No server outlives its owner. pg_ctl starts the server in its own session, so a
Ctrl-C in the terminal does not reach it; instead:
* `stop()` (the fixture's finalizer, and an atexit hook for an exit without one);
* a watchdog process, in its own session too, that blocks reading a pipe only the
  owning process holds: when the owner dies in any way (a crashed xdist worker,
  SIGKILL, os._exit), the pipe reaches end of file and the watchdog stops the server
  and removes the directory;
* and the server itself shuts down within a minute when its directory is gone (it
  checks its postmaster.pid lock file).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import itertools
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from tests.ports import reserved_port

DEBIAN_ROOT = Path("/usr/lib/postgresql")
SERVER_USER = "mbe-test"
FALLBACK_USER = "nobody"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
# useradd and runuser live in /usr/sbin, which a non-login shell's PATH may lack.
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_DATABASE_NAME = re.compile(r"test_[0-9]+")


class PgError(RuntimeError):
    """The cluster could not be set up, or a command against it failed."""


def find_bin_dir() -> Path | None:
    """The newest `/usr/lib/postgresql/<N>/bin/` with initdb and pg_ctl, else the
    directory of an initdb on PATH (symlinks resolved) if pg_ctl is beside it."""
    found = [
        (_version(initdb.parent.parent.name), initdb.parent)
        for initdb in DEBIAN_ROOT.glob("*/bin/initdb")
        if (initdb.parent / "pg_ctl").is_file()
    ]
    if found:
        return max(found)[1]
    on_path = shutil.which("initdb")
    if on_path is not None:
        bin_dir = Path(on_path).resolve().parent
        if (bin_dir / "pg_ctl").is_file():
            return bin_dir
    return None


def available() -> str | None:
    """None when a Cluster can be started here, else one line saying why not."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        return (
            f"PostgreSQL is not installed: no initdb in {DEBIAN_ROOT}/*/bin/ or on PATH"
            " (the Debian package postgresql; make test installs it)"
        )
    if not (bin_dir / "postgres").is_file():
        return f"PostgreSQL in {bin_dir} has initdb and pg_ctl but no postgres binary"
    if _psql(bin_dir) is None:
        return f"PostgreSQL in {bin_dir} has no psql, and there is none on PATH"
    if os.geteuid() != 0:
        return None
    if _which("runuser") is None and _which("setpriv") is None:
        return "PostgreSQL refuses to run as root, and there is no runuser or setpriv here"
    if not (_user_exists(SERVER_USER) or _which("useradd") or _user_exists(FALLBACK_USER)):
        return f"PostgreSQL refuses to run as root, and there is no user {SERVER_USER}"
    return None


class Cluster:
    """A running throwaway cluster; `stop()` ends it (also a context manager)."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        if bin_dir is None:
            reason = available()
            bin_dir = find_bin_dir()
            if reason is not None or bin_dir is None:
                raise PgError(reason or "PostgreSQL is not installed")
        self.bin_dir = bin_dir
        psql = _psql(bin_dir)
        if psql is None:
            raise PgError(f"no psql in {bin_dir} or on PATH")
        self._psql_path = psql
        self.server_user = _server_user()  # None: ourselves
        self._as_server_user = _run_as(self.server_user)
        self.port = reserved_port(HOST)
        self.directory = Path(tempfile.mkdtemp(prefix="mbe-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self._lock = threading.Lock()
        self._stopped = False
        self._names = itertools.count(1)
        self.drop_batch = 10  # see drop_database()
        self._undropped: list[str] = []
        self._dropper: subprocess.Popen[bytes] | None = None
        self._creator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-create")
        self._spare: Future[str] | None = None
        self._admin: Any = None  # the creator's psycopg connection, if psycopg is importable
        self._watchdog = self._start_watchdog()
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            with contextlib.suppress(Exception):
                self.stop()
            raise

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new empty database (a copy of template0), named test_<n>; its URL.

        Each call hands out the database made in the background after the previous
        call, and starts making the next: a test waits for none unless it takes less
        time than one CREATE DATABASE.
        """
        with self._lock:
            if self._stopped:
                raise PgError("the cluster is stopped")
            ready = self._spare if self._spare is not None else self._creator.submit(self._create)
            self._spare = self._creator.submit(self._create)
        return ready.result()

    def drop_database(self, url: str) -> None:
        """Drop a database create_database() made, closing its connections: later, in
        the background, `drop_batch` databases at a time.

        Each DROP DATABASE forces a checkpoint, which with fsync on writes out what was
        written since: one after every test made the next test wait for its database
        several times longer. Not dropping at all would let a worker's cluster grow by
        7 MB a test, and its WAL up to max_wal_size (1 GB) before a checkpoint.
        """
        name = url.rsplit("/", 1)[-1]
        if not _DATABASE_NAME.fullmatch(name):
            raise PgError(f"not a database create_database() made: {url}")
        with self._lock:
            if self._stopped:
                return
            self._undropped.append(name)
            if len(self._undropped) < self.drop_batch:
                return
            if self._dropper is not None:
                self._dropper.wait()  # the batch before, started `drop_batch` tests ago
            command = [self._psql_path, "-X", "-q", "-d", self.url()]
            for undropped in self._undropped:
                command += ["-c", f"DROP DATABASE IF EXISTS {undropped} WITH (FORCE)"]
            self._undropped = []
            self._dropper = subprocess.Popen(
                command,
                env=_client_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def psql(self, url: str, sql: str) -> str:
        """Run `sql` with psql in the database at `url`; its unaligned output."""
        done = subprocess.run(
            self._psql_command(url, sql),
            env=_client_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise PgError(f"psql {sql!r}: {done.stderr.strip()}")
        return done.stdout.strip()

    def postmaster_pid(self) -> int | None:
        """The server's process id, from its lock file; None when it is not running."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """Stop the server (immediate mode: it is thrown away); its directory goes in
        the background, as deleting files can take seconds (3 s for 90 MB on a busy
        disk here)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        atexit.unregister(self.stop)
        pid = self.postmaster_pid()
        try:
            self._creator.shutdown(cancel_futures=True)
            if self._admin is not None:
                with contextlib.suppress(Exception):
                    self._admin.close()
            if self._dropper is not None:
                self._dropper.kill()
                self._dropper.wait()
            if pid is not None:
                self._run(self._stop_command())
        except BaseException:
            if pid is not None:  # its backends exit when they see the postmaster gone
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            raise
        finally:
            if self._watchdog.poll() is not None:
                shutil.rmtree(self.directory, ignore_errors=True)
            elif self._watchdog.stdin is not None:
                self._watchdog.stdin.close()  # it removes the directory and exits
                self._watchdog.wait(timeout=60)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _start(self) -> None:
        if self.server_user is not None:
            os.chown(self.directory, self.server_user.pw_uid, self.server_user.pw_gid)
        self._run(
            [
                str(self.bin_dir / "initdb"),
                f"--pgdata={self.data}",
                "--auth=trust",
                f"--username={SUPERUSER}",
                "--encoding=UTF8",
                "--locale=C",
            ]
        )
        socket_dir = str(self.directory).replace("'", "''")
        settings = f"""
# tests/pg.py: a throwaway cluster for one test process
listen_addresses = '{HOST}'
port = {self.port}
unix_socket_directories = '{socket_dir}'
fsync = on
max_connections = 200
log_min_messages = warning
log_checkpoints = off
"""
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(settings)
        try:
            self._run(
                [
                    str(self.bin_dir / "pg_ctl"),
                    f"--pgdata={self.data}",
                    f"--log={self.log}",
                    "--wait",
                    "--timeout=60",
                    "--silent",
                    "start",
                ]
            )
        except PgError as error:
            try:
                log = self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
            except OSError:
                raise error from None
            raise PgError(f"{error}\n{self.log} ends:\n{log}") from error

    def _stop_command(self) -> list[str]:
        pg_ctl = str(self.bin_dir / "pg_ctl")
        return [pg_ctl, f"--pgdata={self.data}", "--mode=immediate", "--wait", "--silent", "stop"]

    def _run(self, command: list[str]) -> None:
        """Run a server-side binary as the server user, in the cluster directory."""
        done = subprocess.run(
            [*self._as_server_user, *command],
            cwd=self.directory,
            env=_client_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            raise PgError(f"{Path(command[0]).name} failed ({done.returncode}): {output}")

    def _psql_command(self, url: str, sql: str) -> list[str]:
        quiet = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        return [self._psql_path, *quiet, "-d", url, "-c", sql]

    def _create(self) -> str:
        """In the creator thread, the only user of the admin connection."""
        name = f"test_{next(self._names)}"
        self._admin_execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)

    def _admin_execute(self, sql: str) -> None:
        psycopg = _psycopg()
        if psycopg is None:
            self.psql(self.url(), sql)
            return
        if self._admin is None:
            self._admin = psycopg.connect(self.url(), autocommit=True)
        try:
            self._admin.execute(sql)
        except Exception:
            self._admin.close()  # the next call connects afresh
            self._admin = None
            raise

    def _start_watchdog(self) -> subprocess.Popen[bytes]:
        stop = [*self._as_server_user, *self._stop_command()]
        job = json.dumps([stop, str(self.data), str(self.directory)])
        return subprocess.Popen(
            [sys.executable, "-I", "-c", _WATCHDOG, job],
            cwd="/",
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C meant for pytest must not end it first
        )


# Blocks until its stdin, a pipe only the Cluster's process holds, reaches end of file:
# when stop() closes it or that process has died, however. Then stops the server if it
# still runs (SIGKILL if pg_ctl cannot; its backends follow the dead postmaster), and
# leaves a child of its own to remove the directory, which nobody waits for.
_WATCHDOG = """
import json, os, shutil, signal, subprocess, sys
stop, data, directory = json.loads(sys.argv[1])
sys.stdin.buffer.read()
pid_file = os.path.join(data, "postmaster.pid")
if os.path.exists(pid_file):
    try:
        subprocess.run(stop, cwd="/", timeout=60, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except Exception:
        try:
            with open(pid_file) as lines:
                os.kill(int(lines.readline()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
if os.fork() == 0:
    shutil.rmtree(directory, ignore_errors=True)
    os._exit(0)
"""


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"[0-9]+", name))


def _which(name: str) -> str | None:
    path = os.environ.get("PATH", "")
    return shutil.which(name, path=f"{path}:{_SYSTEM_PATH}" if path else _SYSTEM_PATH)


def _psql(bin_dir: Path) -> str | None:
    beside = bin_dir / "psql"
    return str(beside) if beside.is_file() else shutil.which("psql")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _server_user() -> pwd.struct_passwd | None:
    """None when not root; else `mbe-test`, created if missing (xdist workers may race
    to create it: one wins, the others find it), or `nobody` without useradd."""
    if os.geteuid() != 0:
        return None
    useradd = _which("useradd")
    failure = ""
    for _attempt in range(10):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(SERVER_USER)
        if useradd is None:
            return pwd.getpwnam(FALLBACK_USER)
        done = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        failure = done.stderr.strip()
        if done.returncode != 0:
            time.sleep(0.2)  # /etc/passwd locked by a parallel useradd?
    raise PgError(f"could not create the system user {SERVER_USER}: {failure}")


def _run_as(user: pwd.struct_passwd | None) -> list[str]:
    """The command prefix that runs a binary as `user` (none: as ourselves)."""
    if user is None:
        return []
    runuser = _which("runuser")
    if runuser is not None:
        return [runuser, "-u", user.pw_name, "--"]
    setpriv = _which("setpriv")
    if setpriv is not None:
        uid, gid = user.pw_uid, user.pw_gid
        return [setpriv, f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--"]
    raise PgError("PostgreSQL refuses to run as root, and there is no runuser or setpriv here")


def _client_env() -> dict[str, str]:
    """This environment without PG* variables (PGHOST, PGOPTIONS, PGDATA...) that
    would redirect psql or pg_ctl, and with messages in the C locale."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _psycopg() -> ModuleType | None:
    """psycopg 3 when installed (a runtime dependency of the PostgreSQL backend)."""
    try:
        return importlib.import_module("psycopg")
    except ImportError:
        return None
