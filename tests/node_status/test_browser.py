"""The status page of a real `mbe-node serve` process in headless Chromium."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.processes import free_port
from node.storage.store import NodeStore
from tests.browser import recorded_page
from tests.node.conftest import CASE, ApiNode, consent_for, keys_from, make_api_node


def _up(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ApiNode, int]]:
    """An enrolled node with a queued referral, served by `mbe-node serve` on a free port."""
    node = make_api_node(tmp_path)
    # The referral is sealed at the fixed test time but served under the real
    # clock: a long lifetime keeps its envelope from expiring (which would retire it).
    store = NodeStore.open(
        node.settings.db_path, keys_from("caritas-nbg"), node.deps, message_ttl=100 * 365 * 86400
    )
    case_id = store.cases.create(dict(CASE))
    store.consents.record(case_id, consent_for("awo-fue", ["family_name"]))
    store.referrals.create(
        {
            "case_id": case_id,
            "recipient": "awo-fue",
            "target_type": "mbe",
            "fields": ["family_name"],
        }
    )
    store.close()
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "node.cli",
            "serve",
            "--dir",
            str(node.settings.data_dir),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while not _up(port):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.1)
        yield node, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_status_page_in_a_real_browser(served: tuple[ApiNode, int], tmp_path: Path) -> None:
    """Loads without a token, German labels and the queued message shown, no console error,
    not one request outside the node's origin; a screenshot is saved in the test's tmp dir
    (run with --basetemp DIR to keep it)."""
    _, port = served
    origin = f"http://127.0.0.1:{port}"
    shot = tmp_path / "status.png"
    async with recorded_page(width=1200) as (page, recording):
        response = await page.goto(f"{origin}/status")
        assert response is not None
        assert response.status == 200
        assert await page.title() == "Synchronisationsstatus · Caritas Nürnberg"
        assert await page.locator("h1").inner_text() == "Caritas Nürnberg"
        headings = await page.locator("h2").all_inner_texts()
        assert headings == [
            "Einschreibung",
            "Verbindung zum Hub",
            "Nachrichten",
            "Aufbewahrung",
            "Zugriffsprotokoll",
            "Verzeichnis der Beratungsstellen",
            "Statistikmeldungen (neueste Revision)",
        ]
        node_id = page.locator('[data-figure="node_id"]')
        assert await node_id.inner_text() == "caritas-nbg"
        outbox = page.locator('[data-figure="outbox_depth"]')
        assert await outbox.inner_text() == "1 Nachricht wartet"
        # Styled by the hash-allowed inline sheet: the header is dark blue.
        header_bg = await page.locator("header").evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
        assert header_bg == "rgb(28, 61, 90)"
        refresh = page.locator('meta[http-equiv="refresh"]')
        assert await refresh.get_attribute("content") == "30"
        await page.screenshot(path=str(shot), full_page=True)

    assert shot.stat().st_size > 10_000
    assert recording.problems == []
    network = [u for u in recording.requests if not u.startswith("data:")]
    assert [u for u in network if not u.startswith(origin + "/")] == []
    assert network == [f"{origin}/status"]
