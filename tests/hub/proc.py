"""Running `mbe-hub` as a real subprocess, with its log output captured."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `mbe-hub ARGS` to completion; stdout and stderr captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def site_code(data_dir: Path, name: str) -> tuple[str, str]:
    """`mbe-hub site add`, returning (node id, enrollment code) from its output."""
    out = run_cli("site", "add", "--dir", str(data_dir), "--name", name, "--org", "AWO")
    assert out.returncode == 0, out.stderr
    fields = dict(line.split(":", 1) for line in out.stdout.splitlines())
    return fields["node id"].strip(), fields["enrollment code"].strip()


class HubProcess:
    """`mbe-hub serve --port 0`; the bound port is read from its hub.listening log line."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.log_lines: list[str] = []
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hub.cli",
            "serve",
            "--dir",
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self._proc.stdout is not None
        while True:
            raw = await asyncio.wait_for(self._proc.stdout.readline(), timeout=30)
            if not raw:
                raise RuntimeError("hub exited before listening:\n" + "".join(self.log_lines))
            line = raw.decode()
            self.log_lines.append(line)
            if '"hub.listening"' in line:
                self.port = int(json.loads(line)["port"])
                break
        self._reader = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        async for raw in self._proc.stdout:
            self.log_lines.append(raw.decode())

    async def _finish(self) -> int:
        assert self._proc is not None
        code = await asyncio.wait_for(self._proc.wait(), timeout=30)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout=10)
        return code

    async def stop(self) -> int:
        """Graceful stop (SIGTERM, as systemd does)."""
        assert self._proc is not None
        self._proc.terminate()
        return await self._finish()

    async def kill(self) -> int:
        """SIGKILL: no cleanup, no checkpoint, like a crash or power cut of the process."""
        assert self._proc is not None
        self._proc.kill()
        return await self._finish()
