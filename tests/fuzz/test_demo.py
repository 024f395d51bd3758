"""`make demo ARGS=--once` keeps working: the scenario runs end to end as a subprocess,
and what it leaves behind is a dashboard with something to show."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from demo.processes import Service, free_port

ROOT = Path(__file__).parents[2]
MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")


def _coordinator_get(url: str, token: str) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 (loopback URL we built)
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 (loopback URL we built)
        return json.loads(r.read())


def _published(url: str, token: str) -> dict[str, Any] | None:
    """The overview at `url`, or None when its period is not published (409)."""
    try:
        found: dict[str, Any] = _coordinator_get(url, token)
    except urllib.error.HTTPError as exc:
        if exc.code == 409:
            return None
        raise
    return found


def _by_row(base: str, token: str, period: str, measure: str, rows: str) -> dict[str, int]:
    """The region's published numbers of `measure` in `period` by `rows` (perturbed)."""
    url = f"{base}/tables?period={period}&measure={measure}&rows={rows}"
    table = _coordinator_get(url, token)
    return {
        label: entry["value"]
        for label, entry in zip(table["row_labels"], table["row_totals"], strict=True)
    }


def _totals(overview: dict[str, Any]) -> dict[str, int]:
    """The region's total of each key measure in an overview."""
    return {t["measure"]: t["total"]["value"] for t in overview["tables"] if t["rows"] is None}


def test_demo_once_runs_the_scenario_and_exits_zero(tmp_path: Path) -> None:
    """The demo starts hub and offices, every referral reaches its outcome, every period
    the hub still counts is published, exit code 0; the kept hub then shows a coordinator
    at least 12 published months with numbers and offices in at least two areas, and
    referrals of those months (the demo lives through them on a shifted clock): declines
    by reason and answers in more than one wait band."""
    data = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "demo.run", "--once", "--dir", str(data), "--cases", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:] + out[-3000:]
    assert "1. Caritas Nürnberg -> AWO Fürth (jmd): accepted" in out
    assert "2. AWO Fürth -> Diakonie Erlangen (debt_counselling): declined (no_capacity)" in out
    assert "3. Diakonie Erlangen -> Caritas Nürnberg (psychosocial): completed_successful" in out
    assert "sent > delivered > accepted > first_appointment > completed_successful" in out
    # Every decline reason of the code list occurs among this month's referrals.
    declined = re.search(r"declined for: (.*)", out)
    assert declined is not None
    assert {part.split()[0] for part in declined[1].split(", ")} == {
        "client_declined",
        "no_capacity",
        "not_responsible",
        "other",
        "service_not_offered",
    }
    assert re.search(r"demo: OK, all \d+ referrals reached their outcome", out)
    assert out.count("token mbe_") == 4
    assert 'curl -s -H "Authorization: Bearer' in out
    for view in ("/dashboard", "/dashboard/trends", "/dashboard/areas", "/dashboard/referrals"):
        assert re.search(rf"- http://127\.0\.0\.1:\d+{view}\b", out), view
    assert re.search(r"- http://127\.0\.0\.1:\d+/dashboard/table\b", out)
    # --dir keeps the data: the hub and every office have their directory.
    assert {p.name for p in data.iterdir()} >= {"hub", "caritas", "awo", "diakonie", "brk"}
    assert (data / "awo" / "node.db").is_file()

    # The hub again, from the kept directory, asked as the printed coordinator.
    token = re.search(r"coordinator token\s+(mbeh_\S+)", out)
    assert token is not None
    hub = Service("hub", data / "hub", free_port(), tmp_path / "hub-again.log")
    hub.start(timeout=60)
    try:
        base = f"{hub.url}/coordinator/v1"
        periods = _coordinator_get(f"{base}/periods", token[1])["periods"]
        with_numbers = []
        for period in filter(MONTH.fullmatch, periods):
            overview = _published(f"{base}/overview?period={period}", token[1])
            if overview is None:
                continue  # reported, not yet published
            totals = _totals(overview)
            if totals["cases_active"] > 0 and totals["contacts"] > 0:
                with_numbers.append(period)
        assert len(with_numbers) >= 12, (periods, with_numbers)
        assert sum(1 for p in periods if "-Q" in p) >= 5, periods
        # The numbers are perturbed (a 1 or 2 is never published): sums over the months.
        reasons: dict[str, int] = {}
        bands: dict[str, int] = {}
        for period in with_numbers:
            for measure, rows, into in (
                ("referrals_declined_reason", "decline_reason", reasons),
                ("referrals_answered", "wait_band", bands),
            ):
                for label, value in _by_row(base, token[1], period, measure, rows).items():
                    into[label] = into.get(label, 0) + value
        assert sum(1 for n in reasons.values() if n > 0) >= 3, reasons
        assert sum(1 for n in bands.values() if n > 0) >= 3, bands
        offices = _coordinator_get(f"{base}/offices", token[1])["offices"]
        assert all(o["area"] for o in offices)
        assert len({o["area"] for o in offices}) >= 2
    finally:
        hub.stop()


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
