"""Listing endpoints audit every returned row, in one transaction per request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api.keys import STORE
from tests.node.conftest import CASE, ApiNode

Client = TestClient[web.Request, web.Application]


@contextmanager
def _commits(client: Client) -> Iterator[list[str]]:
    """Record the COMMIT statements the node's connection runs meanwhile."""
    conn = client.app[STORE].db.conn
    seen: list[str] = []
    conn.set_trace_callback(lambda sql: seen.append(sql) if sql.strip() == "COMMIT" else None)
    try:
        yield seen
    finally:
        conn.set_trace_callback(None)


async def test_listing_cases_audits_each_row_in_one_commit(
    client: Client, api_node: ApiNode
) -> None:
    """GET /cases with 25 cases writes 25 audit rows with one commit."""
    ids = set()
    for i in range(25):
        resp = await client.post(
            "/api/v1/cases", json=CASE | {"pseudonym": f"K-{i}"}, headers=api_node.auth
        )
        ids.add((await resp.json())["id"])
    with _commits(client) as commits:
        resp = await client.get("/api/v1/cases?limit=100", headers=api_node.auth)
        assert resp.status == 200
    assert {c["id"] for c in (await resp.json())["cases"]} == ids
    assert len(commits) == 1
    rows = [r for r in client.app[STORE].access.audit_rows() if r["action"] == "case.list"]
    assert {r["case_id"] for r in rows} == ids
    assert len(rows) == 25
    assert {r["app"] for r in rows} == {"test-app"}


async def test_an_empty_list_writes_nothing(client: Client, api_node: ApiNode) -> None:
    """An empty listing commits nothing and writes no audit row."""
    # The first request records the token's last use (a commit of its own).
    assert (await client.get("/api/v1/status", headers=api_node.auth)).status == 200
    with _commits(client) as commits:
        resp = await client.get("/api/v1/referrals/incoming", headers=api_node.auth)
        assert resp.status == 200
    assert commits == []
    assert [r["action"] for r in client.app[STORE].access.audit_rows()] == ["token.create"]
