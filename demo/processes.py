"""Start, wait for, stop and kill the real `mbe-hub` and `mbe-node` processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


class ClusterError(Exception):
    """A process of the demo or test cluster did not behave."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(program: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run one CLI command to completion; return stdout, raise with stderr on failure."""
    cmd = [sys.executable, "-m", f"{program}.cli", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"{program} {args[0]} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout


@dataclass
class Service:
    """One long-running `serve` process with its log file."""

    program: str
    data_dir: Path
    port: int
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        env = {**os.environ, **self.extra_env}
        cmd = [
            sys.executable,
            "-m",
            f"{self.program}.cli",
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
