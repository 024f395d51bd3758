"""X-Acting-User on the audit rows, and GET /api/v1/audit (issue 9, item 4)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api.keys import STORE
from tests.node.conftest import CASE, ApiNode

API = "/api/v1"
Client = TestClient[web.Request, web.Application]


async def _new_case(client: Client, headers: dict[str, str]) -> str:
    resp = await client.post(f"{API}/cases", json=dict(CASE), headers=headers)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def test_acting_user_is_recorded_on_every_row(client: Client, api_node: ApiNode) -> None:
    headers = api_node.auth | {"X-Acting-User": "staff:4f2a.b_c-9"}
    case_id = await _new_case(client, headers)
    assert (await client.get(f"{API}/cases/{case_id}", headers=headers)).status == 200
    assert (await client.get(f"{API}/cases", headers=api_node.auth)).status == 200
    store = client.app[STORE]
    rows = await store.run(store.access.audit_rows, case_id)
    assert [(r["action"], r["actor"]) for r in rows] == [
        ("case.create", "staff:4f2a.b_c-9"),
        ("case.read", "staff:4f2a.b_c-9"),
        ("case.list", None),
    ]


async def test_a_bad_acting_user_is_refused_and_not_echoed(
    client: Client, api_node: ApiNode
) -> None:
    for bad in ["Erika Mustermann", "", "x" * 65, "a/b", "ü"]:
        resp = await client.get(f"{API}/cases", headers=api_node.auth | {"X-Acting-User": bad})
        assert resp.status == 400, bad
        problem = await resp.json()
        assert problem["type"].endswith("invalid-request")
        assert "X-Acting-User" in problem["detail"]
        if bad:
            assert bad not in await resp.text()
    # Nothing was read, so nothing was audited.
    store = client.app[STORE]
    rows = await store.run(store.access.audit_rows)
    assert [r["action"] for r in rows] == ["token.create"]
    # Without a token it stays 401 (the header is looked at after the token).
    resp = await client.get(f"{API}/cases", headers={"X-Acting-User": "a b"})
    assert resp.status == 401


async def test_get_audit_pages_and_is_audited(client: Client, api_node: ApiNode) -> None:
    headers = api_node.auth | {"X-Acting-User": "u-17"}
    first = await _new_case(client, headers)
    second = await _new_case(client, api_node.auth)
    resp = await client.get(f"{API}/audit", params={"limit": "2"}, headers=headers)
    assert resp.status == 200, await resp.text()
    page = await resp.json()
    assert [e["action"] for e in page["entries"]] == ["token.create", "case.create"]
    assert page["entries"][1] == {
        "seq": 2,
        "at": page["entries"][1]["at"],
        "app": "test-app",
        "actor": "u-17",
        "action": "case.create",
        "case_id": first,
        "referral_id": None,
    }
    assert page["entries"][1]["at"].endswith("Z") or "+" in page["entries"][1]["at"]
    assert page["next_after"] == 2
    resp = await client.get(f"{API}/audit", params={"after": "2"}, headers=api_node.auth)
    page = await resp.json()
    assert [(e["action"], e["case_id"]) for e in page["entries"]] == [
        ("case.create", second),
        ("audit.read", None),
    ]
    assert page["next_after"] is None
    resp = await client.get(f"{API}/audit", params={"case": first}, headers=api_node.auth)
    page = await resp.json()
    assert [e["action"] for e in page["entries"]] == ["case.create"]
    # That read was audited with the case it asked for.
    resp = await client.get(f"{API}/audit", params={"case": first}, headers=api_node.auth)
    assert [e["action"] for e in (await resp.json())["entries"]] == ["case.create", "audit.read"]


async def test_get_audit_checks_its_parameters(client: Client, api_node: ApiNode) -> None:
    for params in [{"limit": "0"}, {"limit": "1001"}, {"after": "-1"}, {"case": "nope"}]:
        resp = await client.get(f"{API}/audit", params=params, headers=api_node.auth)
        assert resp.status == 400, params
    assert (await client.get(f"{API}/audit")).status == 401
