"""`make demo ARGS=--once` keeps working: the scenario runs end to end as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_demo_once_runs_the_scenario_and_exits_zero(tmp_path: Path) -> None:
    """The demo starts hub and offices, every referral reaches its outcome, exit code 0."""
    data = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "demo.run", "--once", "--dir", str(data), "--cases", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "1. Caritas Nürnberg -> AWO Fürth (jmd): accepted" in out
    assert "2. AWO Fürth -> Diakonie Erlangen (debt_counselling): declined (no_capacity)" in out
    assert "3. Diakonie Erlangen -> Caritas Nürnberg (psychosocial): completed_successful" in out
    assert "sent > delivered > accepted > first_appointment > completed_successful" in out
    assert "demo: OK, all 3 referrals reached their outcome" in out
    assert out.count("token mbe_") == 3
    # Last month's statistics reach the hub and are published (early, by the operator).
    assert out.count("submitted, revision 1") == 3
    assert "published from 3 office report(s)" in out
    assert 'curl -s -H "Authorization: Bearer' in out
    # --dir keeps the data: the hub and every office have their directory.
    assert {p.name for p in data.iterdir()} >= {"hub", "caritas", "awo", "diakonie"}
    assert (data / "awo" / "node.db").is_file()


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    """Pointing --dir at a directory with files in it stops with one line and exit 2."""
    (tmp_path / "something").write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "demo.run", "--once", "--dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "is not empty" in proc.stderr
