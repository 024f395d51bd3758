"""Listing endpoints audit every returned row, in one transaction per request."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api.keys import STORE
from tests.node.conftest import CASE, ApiNode

Client = TestClient[web.Request, web.Application]


@asynccontextmanager
async def _commits(client: Client) -> AsyncIterator[list[str]]:
    """Record the COMMIT statements the node's connection runs meanwhile (on its thread)."""
    store = client.app[STORE]
    conn = store.db.conn
    seen: list[str] = []
    await store.run(
        conn.set_trace_callback, lambda sql: seen.append(sql) if sql.strip() == "COMMIT" else None
    )
    try:
        yield seen
    finally:
        await store.run(conn.set_trace_callback, None)


async def _audit_rows(client: Client) -> list[dict[str, object]]:
    store = client.app[STORE]
    return await store.run(store.access.audit_rows)


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
    async with _commits(client) as commits:
        resp = await client.get("/api/v1/cases?limit=100", headers=api_node.auth)
        assert resp.status == 200
    assert {c["id"] for c in (await resp.json())["cases"]} == ids
    assert len(commits) == 1
    rows = [r for r in await _audit_rows(client) if r["action"] == "case.list"]
    assert {r["case_id"] for r in rows} == ids
    assert len(rows) == 25
    assert {r["app"] for r in rows} == {"test-app"}


async def test_an_empty_list_writes_nothing(client: Client, api_node: ApiNode) -> None:
    """An empty listing commits nothing and writes no audit row."""
    # The first request records the token's last use (a commit of its own).
    assert (await client.get("/api/v1/status", headers=api_node.auth)).status == 200
    async with _commits(client) as commits:
        resp = await client.get("/api/v1/referrals/incoming", headers=api_node.auth)
        assert resp.status == 200
    assert commits == []
    assert [r["action"] for r in await _audit_rows(client)] == ["token.create"]


async def test_a_change_and_its_audit_row_commit_together(
    client: Client, api_node: ApiNode
) -> None:
    """If the audit row cannot be written (disk full, database locked), the change is
    rolled back with it: the app's retry creates one case, not two, and no change
    exists without its audit row."""
    store = client.app[STORE]
    real = store.access.audit

    def failing(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    store.access.audit = failing  # type: ignore[method-assign]
    first = await client.post("/api/v1/cases", json=CASE, headers=api_node.auth)
    assert first.status == 500
    store.access.audit = real  # type: ignore[method-assign]
    retry = await client.post("/api/v1/cases", json=CASE, headers=api_node.auth)
    assert retry.status == 201
    cases = await store.run(store.cases.list_cases)
    assert len(cases) == 1
    created = [r for r in await _audit_rows(client) if r["action"] == "case.create"]
    assert [r["case_id"] for r in created] == [cases[0]["id"]]
