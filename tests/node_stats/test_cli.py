"""`mbe-node stats preview|submit`: output, and user errors as one line with exit status 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.cli import main, sync_background
from node.config import load_settings
from node.jobs.stats_scheduler import stats_scheduler_ctx
from node.storage.store import NodeStore
from tests.node.conftest import ApiNode, Office, keys_from, make_api_node
from tests.node_stats.conftest import build_known, set_today


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def node_dir(tmp_path: Path) -> tuple[Path, ApiNode]:
    node = make_api_node(tmp_path)
    store = NodeStore.open(
        node.settings.db_path, keys_from("caritas-nbg"), node.deps, message_ttl=86400
    )
    office = Office(node_id="caritas-nbg", store=store, clock=node.clock)
    set_today(office, "2027-01-20")
    build_known(office)
    store.close()
    return node.settings.data_dir, node


def test_preview_prints_cells_and_json(
    node_dir: tuple[Path, ApiNode], capsys: pytest.CaptureFixture[str]
) -> None:
    """preview lists every non-zero cell; --json gives the API's preview document."""
    data, _ = node_dir
    code, out, err = _run(["stats", "preview", "--dir", str(data), "--period", "2026-Q4"], capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("Period 2026-Q4")
    assert any(line.split() == ["cases_active", "-", "4"] for line in lines)
    assert any(line.split() == ["cases_active", "topic=housing", "3"] for line in lines)
    code, out, _ = _run(
        ["stats", "preview", "--dir", str(data), "--period", "2026-Q4", "--json"], capsys
    )
    doc = json.loads(out)
    assert code == 0
    assert doc["cell_count"] == len(lines) - 1


def test_submit_with_unreachable_hub_is_queued(
    node_dir: tuple[Path, ApiNode], capsys: pytest.CaptureFixture[str]
) -> None:
    """submit seals the report; with the hub unreachable it says queued and exits 0."""
    data, _ = node_dir
    code, out, err = _run(["stats", "submit", "--dir", str(data), "--period", "2025-12"], capsys)
    assert (code, err) == (0, "")
    assert out.strip().splitlines()[-1] == (
        "2025-12 revision 1 (0 cells): queued, the hub is not reachable; mbe-node serve retries it"
    )
    code, out, _ = _run(["stats", "preview", "--dir", str(data), "--period", "2025-12"], capsys)
    assert "Last report: revision 1 (pending), same as now" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--period", "2026-13"], "period must look like 2026-11, 2026-Q4 or 2026"),
        (["--period", "Q4"], "period must look like 2026-11, 2026-Q4 or 2026"),
        (["--period", "2999-01"], "period 2999-01 has not ended"),
    ],
)
def test_submit_user_errors_are_one_line(
    node_dir: tuple[Path, ApiNode],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    """A bad or open period ends with one line on stderr and exit status 1."""
    data, _ = node_dir
    code, out, err = _run(["stats", "submit", "--dir", str(data), *argv], capsys)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("mbe-node: error: ")
    assert message in err


def test_preview_bad_period_and_missing_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad period is refused before the data dir is read; a missing dir is one line too."""
    code, _, err = _run(["stats", "preview", "--dir", str(tmp_path / "x"), "--period", "x"], capsys)
    assert (code, err.count("\n")) == (1, 1)
    assert "period must look like" in err
    code, _, err = _run(
        ["stats", "preview", "--dir", str(tmp_path / "x"), "--period", "2026"], capsys
    )
    assert (code, err.count("\n")) == (1, 1)
    assert "does not exist" in err


def test_submit_not_enrolled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A node that never enrolled cannot submit: one line, exit 1."""
    data = tmp_path / "fresh"
    assert _run(["init", "--dir", str(data)], capsys)[0] == 0
    code, _, err = _run(["stats", "submit", "--dir", str(data), "--period", "2025-12"], capsys)
    assert (code, err.count("\n")) == (1, 1)
    assert "not enrolled" in err


def test_stats_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    """`mbe-node stats` alone is a usage error (argparse, exit status 2)."""
    with pytest.raises(SystemExit) as exc:
        main(["stats"])
    assert exc.value.code == 2
    assert "ACTION" in capsys.readouterr().err


def test_serve_runs_the_stats_scheduler(node_dir: tuple[Path, ApiNode]) -> None:
    """sync_background registers the stats scheduler next to the sync worker."""
    data, _ = node_dir
    assert stats_scheduler_ctx in sync_background(load_settings(data))
