"""Statistics routes of the local API: preview, submit, submissions, with token and contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api.app import create_app
from node.api.stats_handlers import STATS_CONNECT
from node.storage.store import NodeStore
from tests.node.conftest import ApiNode, Office, keys_from, make_api_node
from tests.node_stats.conftest import FakeHub, add_case, build_known, set_today

Client = TestClient[web.Request, web.Application]
API = "/api/v1"


@pytest.fixture
def stats_node(tmp_path: Path) -> ApiNode:
    node = make_api_node(tmp_path)
    store = NodeStore.open(
        node.settings.db_path, keys_from("caritas-nbg"), node.deps, message_ttl=86400
    )
    office = Office(node_id="caritas-nbg", store=store, clock=node.clock)
    set_today(office, "2027-01-20")
    build_known(office)
    store.close()
    return node


@pytest.fixture
def fake_hub(stats_node: ApiNode) -> FakeHub:
    return FakeHub(clock=stats_node.clock)


@pytest.fixture
async def client(stats_node: ApiNode, fake_hub: FakeHub, aiohttp_client: Any) -> Client:
    app = create_app(stats_node.settings, deps=stats_node.deps)
    app[STATS_CONNECT] = fake_hub.connect()
    result: Client = await aiohttp_client(app)
    return result


async def _json(resp: Any, status: int) -> Any:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    return body


async def test_preview_needs_a_token_and_shows_the_counts(
    client: Client, stats_node: ApiNode
) -> None:
    """GET /stats?period= answers 401 without a token and the office's cells with one."""
    assert (await client.get(f"{API}/stats?period=2026-Q4")).status == 401
    body = await _json(
        await client.get(f"{API}/stats?period=2026-Q4", headers=stats_node.auth), 200
    )
    assert body["period"] == "2026-Q4"
    assert body["complete"] is True
    assert body["last_submission"] is None
    assert body["changed_since_submission"] is None
    cells = {(c["measure"], tuple(sorted(c["dims"].items()))): c["count"] for c in body["cells"]}
    assert cells[("cases_active", ())] == 4
    assert cells[("cases_active", (("topic", "housing"),))] == 3
    assert cells[("contacts", (("channel", "in_person"), ("gender", "male")))] == 1
    assert body["cell_count"] == len(body["cells"])


async def test_preview_refuses_a_malformed_period(client: Client, stats_node: ApiNode) -> None:
    """A period that is not YYYY-MM, YYYY-Qn or YYYY is a 400 problem naming the parameter."""
    for bad in ("2026-13", "2026-Q5", "26", "2026-1"):
        resp = await client.get(f"{API}/stats?period={bad}", headers=stats_node.auth)
        body = await _json(resp, 400)
        assert resp.content_type == "application/problem+json"
        assert "period" in body["detail"]


async def test_submit_then_unchanged_then_queued_revision(
    client: Client, stats_node: ApiNode, fake_hub: FakeHub
) -> None:
    """Submit sends revision 1 (200), again is unchanged (200), a late case with the hub down
    queues revision 2 (202), and the submissions list shows both."""
    auth = stats_node.auth
    url = f"{API}/stats/submit"
    first = await _json(await client.post(url, json={"period": "2026-Q4"}, headers=auth), 200)
    assert (first["state"], first["revision"]) == ("submitted", 1)
    assert fake_hub.received[0].period == "2026-Q4"
    again = await _json(await client.post(url, json={"period": "2026-Q4"}, headers=auth), 200)
    assert (again["state"], again["revision"]) == ("unchanged", 1)
    created = await client.post(
        f"{API}/cases",
        json={"case_type": "short_counselling", "pseudonym": "spät", "opened": "2026-12-01"},
        headers=auth,
    )
    assert created.status == 201
    fake_hub.down = True
    queued = await _json(await client.post(url, json={"period": "2026-Q4"}, headers=auth), 202)
    assert (queued["state"], queued["revision"]) == ("queued", 2)
    listed = await _json(
        await client.get(f"{API}/stats/submissions?period=2026-Q4", headers=auth), 200
    )
    assert [(s["revision"], s["state"]) for s in listed["submissions"]] == [
        (1, "submitted"),
        (2, "pending"),
    ]
    preview = await _json(await client.get(f"{API}/stats?period=2026-Q4", headers=auth), 200)
    assert preview["last_submission"]["revision"] == 2
    assert preview["changed_since_submission"] is False


async def test_submit_problems(client: Client, stats_node: ApiNode, fake_hub: FakeHub) -> None:
    """An open period is 409, a hub refusal 422 hub-refused, a bad body 400; all problem+json."""
    auth = stats_node.auth
    url = f"{API}/stats/submit"
    open_ = await _json(await client.post(url, json={"period": "2027-01"}, headers=auth), 409)
    assert open_["type"].endswith("period-open")
    fake_hub.refuse = "inconsistent-report"
    refused = await _json(await client.post(url, json={"period": "2026-10"}, headers=auth), 422)
    assert refused["type"].endswith("hub-refused")
    assert "inconsistent-report" in refused["detail"]
    await _json(await client.post(url, json={"period": "2026-10", "x": 1}, headers=auth), 400)
    await _json(await client.post(url, json={}, headers=auth), 400)
    assert len(fake_hub.received) == 0


def test_office_helper_matches_api_node(stats_node: ApiNode) -> None:
    """The API fixture's database holds the known cases (five) written through the store."""
    store = NodeStore.open(
        stats_node.settings.db_path, keys_from("caritas-nbg"), stats_node.deps, message_ttl=86400
    )
    try:
        row = store.ctx.one("SELECT COUNT(*) AS n FROM cases")
        assert row is not None
        assert row["n"] == 5
        add_case(Office("caritas-nbg", store, stats_node.clock), opened="2026-01-02")
        assert store.ctx.one("SELECT COUNT(*) AS n FROM cases") == {"n": 6}
    finally:
        store.close()
