"""Idempotency-Key: a retried change gets the first answer and is not done twice."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api.keys import STORE
from node.storage.idempotency import KEEP_SECONDS
from tests.node.conftest import CASE, ApiNode, consent_for

Client = TestClient[web.Request, web.Application]
API = "/api/v1"
MARKER = "Zqxidempotentname"


def _with_key(api_node: ApiNode, key: str) -> dict[str, str]:
    return api_node.auth | {"Idempotency-Key": key}


async def _count(client: Client, sql: str) -> int:
    store = client.app[STORE]
    rows = await store.run(lambda: store.db.execute(sql).fetchall())
    return int(rows[0][0])


async def test_a_retried_create_answers_the_same_and_creates_once(
    client: Client, api_node: ApiNode
) -> None:
    key = str(uuid.uuid4())
    first = await client.post(f"{API}/cases", json=CASE, headers=_with_key(api_node, key))
    again = await client.post(f"{API}/cases", json=CASE, headers=_with_key(api_node, key))
    assert (first.status, again.status) == (201, 201)
    assert await first.json() == await again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await _count(client, "SELECT COUNT(*) FROM cases") == 1
    other = await client.post(f"{API}/cases", json=CASE, headers=_with_key(api_node, "k2"))
    assert other.status == 201
    assert await _count(client, "SELECT COUNT(*) FROM cases") == 2


async def test_the_same_key_for_another_request_is_refused(
    client: Client, api_node: ApiNode
) -> None:
    headers = _with_key(api_node, "reused-key")
    assert (await client.post(f"{API}/cases", json=CASE, headers=headers)).status == 201
    changed = {**CASE, "pseudonym": "K-other"}
    resp = await client.post(f"{API}/cases", json=changed, headers=headers)
    problem = await resp.json()
    assert resp.status == 422
    assert problem["type"].endswith("idempotency-key-reused")
    assert await _count(client, "SELECT COUNT(*) FROM cases") == 1


async def test_concurrent_retries_create_once(client: Client, api_node: ApiNode) -> None:
    headers = _with_key(api_node, "burst")
    answers = await asyncio.gather(
        *(client.post(f"{API}/cases", json=CASE, headers=headers) for _ in range(5))
    )
    bodies = [await r.json() for r in answers]
    assert {r.status for r in answers} == {201}
    assert len({b["id"] for b in bodies}) == 1
    assert await _count(client, "SELECT COUNT(*) FROM cases") == 1


async def test_a_retried_referral_is_sealed_once(client: Client, api_node: ApiNode) -> None:
    case = await (await client.post(f"{API}/cases", json=CASE, headers=api_node.auth)).json()
    fields = ["given_name", "topics"]
    consent = consent_for("awo-fue", fields)
    assert (
        await client.post(f"{API}/cases/{case['id']}/consents", json=consent, headers=api_node.auth)
    ).status == 201
    body = {"case_id": case["id"], "recipient": "awo-fue", "target_type": "jmd", "fields": fields}
    headers = _with_key(api_node, "referral-1")
    ids = set()
    for _ in range(3):
        resp = await client.post(f"{API}/referrals/outgoing", json=body, headers=headers)
        assert resp.status == 201
        ids.add((await resp.json())["id"])
    assert len(ids) == 1
    assert await _count(client, "SELECT COUNT(*) FROM outbox") == 1


async def test_a_failed_change_keeps_no_answer(client: Client, api_node: ApiNode) -> None:
    """A refused change (422) is not remembered: the corrected retry goes through."""
    headers = _with_key(api_node, "fix-and-retry")
    missing = "0" * 32
    resp = await client.post(f"{API}/cases/{missing}/close", json={"closure_reason": "moved"})
    assert resp.status == 401
    resp = await client.post(
        f"{API}/cases/{missing}/close", json={"closure_reason": "moved"}, headers=headers
    )
    assert resp.status == 404
    assert await _count(client, "SELECT COUNT(*) FROM idempotency") == 0


async def test_bad_keys_are_refused_without_echo(client: Client, api_node: ApiNode) -> None:
    for key in ("", "x" * 129, "with space", "ümlaut"):
        headers = api_node.auth | {"Idempotency-Key": key.encode("utf-8").decode("latin-1")}
        resp = await client.post(f"{API}/cases", json=CASE, headers=headers)
        body: dict[str, Any] = await resp.json()
        assert resp.status == 400, key
        assert "Idempotency-Key" in body["detail"]
        assert key not in body["detail"] or not key
    assert await _count(client, "SELECT COUNT(*) FROM cases") == 0


async def test_kept_answers_go_with_an_erased_case_and_after_a_day(
    client: Client, api_node: ApiNode
) -> None:
    store = client.app[STORE]
    created = await client.post(
        f"{API}/cases", json={**CASE, "family_name": MARKER}, headers=_with_key(api_node, "e1")
    )
    case_id = (await created.json())["id"]
    assert await _count(client, "SELECT COUNT(*) FROM idempotency") == 1
    erased = await client.delete(
        f"{API}/cases/{case_id}?reason=client_request", headers=_with_key(api_node, "e2")
    )
    assert erased.status == 200
    rows = await store.run(lambda: store.db.execute("SELECT body FROM idempotency").fetchall())
    assert all(MARKER.encode() not in bytes(r[0]) for r in rows)
    assert len(rows) == 1, "the erasure's own answer (ids and dates) stays for its retry"
    again = await client.delete(
        f"{API}/cases/{case_id}?reason=client_request", headers=_with_key(api_node, "e2")
    )
    assert again.status == 200, "a retried erasure answers as the first did"
    api_node.clock.advance(KEEP_SECONDS + 1)
    assert await store.run(store.idempotency.purge) == 1
    assert await _count(client, "SELECT COUNT(*) FROM idempotency") == 0
