"""`mbe-node client export`: JSON or the German document, audited, one-line errors."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from node.cli import CLI_APP, main
from node.storage.store import NodeStore
from tests.node.conftest import CASE, ApiNode, keys_from, make_api_node

PERSONAL = ("Amina", "Haddad", "+49 911")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _store(node: ApiNode) -> NodeStore:
    return NodeStore.open(
        node.settings.db_path, keys_from("caritas-nbg"), node.deps, message_ttl=86400
    )


@pytest.fixture
def node_with_case(tmp_path: Path) -> tuple[ApiNode, str]:
    node = make_api_node(tmp_path)
    store = _store(node)
    case_id = store.cases.create(CASE)
    store.close()
    return node, case_id


def test_json_export_is_printed_and_audited(
    node_with_case: tuple[ApiNode, str], capsys: pytest.CaptureFixture[str]
) -> None:
    node, case_id = node_with_case
    code, out, _err = _run(
        ["client", "export", "--dir", str(node.settings.data_dir), case_id], capsys
    )
    assert code == 0
    export = json.loads(out)
    assert export["case"]["family_name"] == "Haddad"
    last = export["accesses"][-1]
    assert (last["app"], last["action"]) == (CLI_APP, "case.export")
    store = _store(node)
    try:
        assert store.access.audit_rows(case_id)[-1]["action"] == "case.export"
    finally:
        store.close()


def test_html_export_written_to_a_private_file(
    node_with_case: tuple[ApiNode, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    node, case_id = node_with_case
    target = tmp_path / "auskunft.html"
    argv = ["client", "export", "--dir", str(node.settings.data_dir), "--html"]
    code, out, _err = _run([*argv, "--output", str(target), case_id], capsys)
    assert code == 0
    assert out == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    html = target.read_text(encoding="utf-8")
    assert '<html lang="de">' in html
    assert "Ihre Rechte" in html
    assert "Haddad" in html


def test_unknown_and_erased_cases_are_one_line_errors(
    node_with_case: tuple[ApiNode, str], capsys: pytest.CaptureFixture[str]
) -> None:
    node, case_id = node_with_case
    argv = ["client", "export", "--dir", str(node.settings.data_dir)]
    code, out, err = _run([*argv, "0" * 32], capsys)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert "not found" in err
    store = _store(node)
    store.erasure.erase_case(case_id, "client_request", app="test")
    store.close()
    capsys.readouterr()  # the erasure's log line
    code, out, err = _run([*argv, case_id], capsys)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert "erased" in err
    assert not any(value in err for value in PERSONAL)
