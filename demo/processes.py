"""Start, wait for, stop and kill the real `mbe-hub` and `mbe-node` processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ClusterError(Exception):
    """A process of the demo or test cluster did not behave."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The repository root: `demo.timeshift` must be importable by the processes it starts.
_ROOT = Path(__file__).resolve().parents[1]


def _entry(program: str, clock: Path | None) -> list[str]:
    """`python -m {program}.cli`, through `demo.timeshift` when `clock` (its offset file) is set."""
    if clock is None:
        return [sys.executable, "-m", f"{program}.cli"]
    return [sys.executable, "-m", "demo.timeshift", str(clock), f"{program}.cli"]


def _env(clock: Path | None, env: dict[str, str] | None = None) -> dict[str, str] | None:
    if clock is None:
        return env
    base = dict(os.environ if env is None else env)
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), base.get("PYTHONPATH")]))
    return base


def cli(
    program: str, *args: str, env: dict[str, str] | None = None, clock: Path | None = None
) -> str:
    """Run one CLI command to completion; return stdout, raise with stderr on failure.

    `clock`: the demo's clock offset file (demo/timeshift.py), or None for real time.
    """
    cmd = [*_entry(program, clock), *args]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=_env(clock, env), timeout=60, check=False
    )
    if proc.returncode != 0:
        raise ClusterError(f"{program} {args[0]} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout


# Runs commands of one program's CLI in one interpreter (see cli_batch): argv[1] is
# the program, argv[2] the commands as JSON; prints one JSON result per command.
_BATCH = """
import contextlib, importlib, io, json, sys
if sys.argv[3]:
    from pathlib import Path
    from demo.timeshift import install
    install(Path(sys.argv[3]))
main = importlib.import_module(sys.argv[1] + ".cli").main
for argv in json.loads(sys.argv[2]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    print(json.dumps({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}))
    sys.stdout.flush()
    if code:
        break
"""


def cli_batch(
    program: str, commands: Sequence[Sequence[str]], clock: Path | None = None
) -> list[str]:
    """Run several commands of one CLI in order, in one interpreter; their stdouts.

    The same entry point and arguments as `cli()` (`{program}.cli.main(argv)`), but
    Python starts and imports the program once, not once per command: that costs
    about 1.5 s of CPU each time. Stops at the first command that fails.
    """
    batch = json.dumps([list(c) for c in commands])
    cmd = [sys.executable, "-c", _BATCH, program, batch, str(clock or "")]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=_env(clock), timeout=120, check=False
    )
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    for argv, result in zip(commands, results, strict=False):
        if result["code"] != 0:
            raise ClusterError(f"{program} {argv[0]} failed: {result['stderr'].strip()[-500:]}")
    if proc.returncode != 0 or len(results) != len(commands):
        raise ClusterError(f"{program} commands failed: {proc.stderr.strip()[-500:]}")
    return [str(r["stdout"]) for r in results]


@dataclass
class Service:
    """One long-running `serve` process with its log file."""

    program: str
    data_dir: Path
    port: int
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    # The demo's clock offset file (demo/timeshift.py); None: real time.
    clock: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        env = _env(self.clock, {**os.environ, **self.extra_env}) or {}
        cmd = [
            *_entry(self.program, self.clock),
            "serve",
            "--dir",
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        # Logs hold ids and times, never client data, but they are the office's
        # business: private to the user, like everything in a data directory.
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        log = os.fdopen(fd, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ClusterError(
                    f"{self.program} on port {self.port} exited with {self.proc.returncode}; "
                    f"see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:  # noqa: S310 (loopback URL we built)
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise ClusterError(f"{self.program} on port {self.port} not healthy after {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait: the graceful shutdown an administrator does."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise ClusterError(f"{self.program} did not stop within {timeout} s") from None

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")
