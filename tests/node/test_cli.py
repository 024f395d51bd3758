"""The mbe-node command line: init, token create, status, serve, and user errors."""

from __future__ import annotations

import http.client
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demo.processes import free_port
from node.cli import main
from node.config import load_settings
from tests.node.conftest import make_api_node


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_init_creates_config_keys_and_db(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """init writes node.toml, a 0600 key file and a database; settings load from it."""
    data = tmp_path / "office"
    code, out, _ = _run(["init", "--dir", str(data), "--name", "AWO Fürth"], capsys)
    assert code == 0
    assert "fingerprint" in out.lower()
    assert stat.S_IMODE((data / "node.key").stat().st_mode) == 0o600
    assert len((data / "node.key").read_bytes()) == 64
    assert (data / "node.db").exists()
    settings = load_settings(data)
    assert (settings.name, settings.api.host) == ("AWO Fürth", "127.0.0.1")


def test_init_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second init of the same directory fails with one line and keeps the keys."""
    data = tmp_path / "office"
    _run(["init", "--dir", str(data)], capsys)
    before = (data / "node.key").read_bytes()
    code, _, err = _run(["init", "--dir", str(data)], capsys)
    assert code == 1
    assert err.count("\n") == 1
    assert "already" in err
    assert (data / "node.key").read_bytes() == before


def test_token_create_and_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """token create prints a token once; status prints a readable table."""
    node = make_api_node(tmp_path)
    data = str(node.settings.data_dir)
    code, out, _ = _run(["token", "create", "--dir", data, "--name", "fachverfahren"], capsys)
    assert code == 0
    assert out.strip().startswith("mbe_")
    code, _, err = _run(["token", "create", "--dir", data, "--name", "fachverfahren"], capsys)
    assert (code, err.count("\n")) == (1, 1)
    code, out, _ = _run(["status", "--dir", data], capsys)
    assert code == 0
    lines = dict(line.split("  ", 1) for line in out.splitlines())
    assert lines["Enrolled"].strip().startswith("yes, as caritas-nbg")
    directory = lines["Directory"].strip()  # the fixture directory expires 2026-10-21
    assert directory.startswith("version 1, ")
    assert "2026-10-21T" in directory
    assert lines["Outbox"].strip() == "0 waiting"
    assert lines["Last sync"].strip() == "never"


@pytest.mark.parametrize(
    ("setup", "argv", "expect"),
    [
        ("none", ["status", "--dir", "{d}/missing"], "does not exist"),
        ("toml", ["status", "--dir", "{d}"], "unknown key [api].colour"),
        ("type", ["status", "--dir", "{d}"], "[api].port must be of type int"),
        ("sync", ["status", "--dir", "{d}"], "sync.batch_size"),
        ("mode", ["status", "--dir", "{d}"], "chmod 600"),
        ("mode", ["serve", "--dir", "{d}", "--port", "0"], "chmod 600"),
        ("nokey", ["token", "create", "--dir", "{d}", "--name", "x"], "node.key not found"),
        ("ok", ["token", "create", "--dir", "{d}", "--name", "bad name"], "app name"),
    ],
)
def test_user_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, argv: list[str], expect: str
) -> None:
    """Every user error ends with exit 1 and exactly one line on stderr, no traceback."""
    data = tmp_path / "office"
    if setup != "none":
        main(["init", "--dir", str(data)])
        capsys.readouterr()
    config = data / "node.toml"
    if setup == "toml":
        config.write_text('[api]\ncolour = "blue"\n')
    elif setup == "type":
        config.write_text('[api]\nport = "80"\n')
    elif setup == "sync":
        config.write_text("[sync]\nbatch_size = 0\n")
    elif setup == "mode":
        os.chmod(data / "node.key", 0o644)
    elif setup == "nokey":
        (data / "node.key").unlink()
    code, _, err = _run([a.format(d=data) for a in argv], capsys)
    assert code == 1
    assert err.count("\n") == 1
    assert expect in err
    assert "Traceback" not in err


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path, headers=headers or {})
        return conn.getresponse().status
    finally:
        conn.close()


def test_serve_answers_health_and_requires_tokens(tmp_path: Path) -> None:
    """`mbe-node serve` in a real process answers /health and refuses a tokenless request."""
    node = make_api_node(tmp_path)
    port = free_port()
    argv = ["serve", "--dir", str(node.settings.data_dir), "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.cli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
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
        assert _get(port, "/api/v1/cases") == 401
        assert _get(port, "/api/v1/status", node.auth) == 200
        status = _node_cli(["status", "--dir", str(node.settings.data_dir)])
        assert f"http://127.0.0.1:{port}/api/v1 (mbe-node serve is running)" in status.stdout
        # A second serve on the busy port fails at once, before announcing anything.
        busy = _node_cli(argv)
        assert busy.returncode == 1
        assert "mbe-node API on" not in busy.stdout
        assert busy.stderr.strip().splitlines() == [
            f"mbe-node: error: cannot listen on 127.0.0.1:{port}: Address already in use"
        ]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode in (0, -15)
    stopped = _node_cli(["status", "--dir", str(node.settings.data_dir)])
    assert "(configured; mbe-node serve is not running)" in stopped.stdout


def test_serve_refuses_an_off_loopback_host_without_allow_network(tmp_path: Path) -> None:
    node = make_api_node(tmp_path)
    refused = _node_cli(["serve", "--dir", str(node.settings.data_dir), "--host", "0.0.0.0"])  # noqa: S104 -- the value under test
    assert refused.returncode == 1
    assert "is not a loopback address" in refused.stderr
    assert "api.allow_network = true" in refused.stderr


def _node_cli(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
