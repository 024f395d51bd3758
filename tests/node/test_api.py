"""The local API through the aiohttp test client: happy paths, auth, problems, contract."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api.app import PUBLIC_PATHS, create_app, load_spec_text
from node.api.keys import STORE
from protocol import codes
from protocol.payloads import CLIENT_FIELDS
from tests.node.conftest import CASE, ApiNode, consent_for

Client = TestClient[web.Request, web.Application]
API = "/api/v1"
FIELDS = ["given_name", "family_name", "topics"]


async def _ok(resp: Any, status: int = 200) -> Any:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    return body


async def _new_case(client: Client, auth: dict[str, str]) -> str:
    case = await _ok(await client.post(f"{API}/cases", json=CASE, headers=auth), 201)
    return str(case["id"])


def _paths_in_spec() -> set[tuple[str, str]]:
    doc = yaml.safe_load(load_spec_text())
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


def _routes(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        out.add((route.method, route.resource.canonical if route.resource else ""))
    return out


def test_every_route_is_in_the_spec_and_back(api_node: ApiNode) -> None:
    """The router and the OpenAPI document list exactly the same operations."""
    assert _routes(create_app(api_node.settings)) == _paths_in_spec()


async def test_every_route_but_public_ones_refuses_without_token(
    client: Client, api_node: ApiNode
) -> None:
    """Each route from the router, called without or with a wrong token, answers 401 problem."""
    routes = _routes(client.app)
    # The exemptions, named one by one: liveness, the spec (YAML, JSON) and the
    # administrator's status page; none of them holds personal data (docs/node.md).
    assert {"/health", "/status", f"{API}/openapi.yaml", f"{API}/openapi.json"} == PUBLIC_PATHS
    protected = [(m, p) for m, p in routes if p not in PUBLIC_PATHS]
    assert len(protected) == len(routes) - 4
    for method, path in sorted(protected):
        url = path.format(
            case_id="0" * 32, referral_id="0" * 32, consent_id="0" * 32, agreement_id="0" * 32
        )
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": api_node.token}):
            resp = await client.request(method, url, headers=headers, json={})
            assert resp.status == 401, (method, path, headers)
            assert resp.content_type == "application/problem+json"
            assert (await resp.json(content_type=None))["status"] == 401


async def test_public_routes(client: Client) -> None:
    """Health and the spec (YAML and JSON) answer without a token."""
    assert await _ok(await client.get("/health")) == {"status": "ok"}
    spec = await client.get(f"{API}/openapi.yaml")
    assert spec.status == 200
    assert yaml.safe_load(await spec.text())["openapi"].startswith("3.")
    assert (await _ok(await client.get(f"{API}/openapi.json")))["paths"]


async def test_case_lifecycle_with_contacts_agreements_and_audit(
    client: Client, api_node: ApiNode
) -> None:
    """Create, list, read, update, contacts, agreement, close; each access is audited."""
    auth = api_node.auth
    case_id = await _new_case(client, auth)
    listed = await _ok(await client.get(f"{API}/cases?status=open", headers=auth))
    assert [c["id"] for c in listed["cases"]] == [case_id]
    updated = await _ok(
        await client.patch(f"{API}/cases/{case_id}", json={"phone": None}, headers=auth)
    )
    assert updated["phone"] is None
    contact = {"date": "2026-09-03", "channel": "video", "minutes": 30, "topics": ["health"]}
    await _ok(await client.post(f"{API}/cases/{case_id}/contacts", json=contact, headers=auth), 201)
    assert (
        len(
            (await _ok(await client.get(f"{API}/cases/{case_id}/contacts", headers=auth)))[
                "contacts"
            ]
        )
        == 1
    )
    goals = [{"goal": "Arbeit finden", "measure": "Bewerbungstraining", "status": "open"}]
    agreement = await _ok(
        await client.post(
            f"{API}/cases/{case_id}/agreements",
            json={"agreed": "2026-09-04", "goals": goals},
            headers=auth,
        ),
        201,
    )
    goals[0]["status"] = "achieved"
    await _ok(
        await client.put(
            f"{API}/cases/{case_id}/agreements/{agreement['id']}",
            json={"goals": goals},
            headers=auth,
        )
    )
    agreements = await _ok(await client.get(f"{API}/cases/{case_id}/agreements", headers=auth))
    assert agreements["agreements"][0]["goals"][0]["status"] == "achieved"
    closed = await _ok(
        await client.post(
            f"{API}/cases/{case_id}/close", json={"closure_reason": "moved"}, headers=auth
        )
    )
    assert closed["closure_reason"] == "moved"
    again = await client.post(
        f"{API}/cases/{case_id}/close", json={"closure_reason": "moved"}, headers=auth
    )
    assert again.status == 409
    store = client.app[STORE]
    rows = await store.run(store.access.audit_rows, case_id)
    actions = [r["action"] for r in rows]
    assert actions[:3] == ["case.create", "case.list", "case.update"]
    assert "case.close" in actions
    assert {r["app"] for r in rows} == {"test-app"}


async def test_referral_flow_through_the_api(client: Client, api_node: ApiNode) -> None:
    """Consent recorded, referral created into the outbox, listed, withdrawn; status shows depth."""
    auth = api_node.auth
    case_id = await _new_case(client, auth)
    refused = await client.post(
        f"{API}/referrals/outgoing",
        json={"case_id": case_id, "recipient": "awo-fue", "target_type": "mbe", "fields": FIELDS},
        headers=auth,
    )
    assert refused.status == 422
    assert refused.content_type == "application/problem+json"
    problem = await refused.json(content_type=None)
    assert "awo-fue" in problem["detail"]
    assert "Haddad" not in problem["detail"]
    consent = await _ok(
        await client.post(
            f"{API}/cases/{case_id}/consents", json=consent_for("awo-fue", FIELDS), headers=auth
        ),
        201,
    )
    assert consent["valid"] is True
    ref = await _ok(
        await client.post(
            f"{API}/referrals/outgoing",
            json={
                "case_id": case_id,
                "recipient": "awo-fue",
                "target_type": "mbe",
                "fields": FIELDS,
            },
            headers=auth,
        ),
        201,
    )
    assert (ref["state"], ref["fields"]) == ("sent", FIELDS)
    status = await _ok(await client.get(f"{API}/status", headers=auth))
    assert (status["enrolled"], status["outbox_depth"], status["directory_version"]) == (True, 1, 1)
    assert status["oldest_unsent"] is not None
    listed = await _ok(await client.get(f"{API}/referrals/outgoing", headers=auth))
    assert [r["id"] for r in listed["referrals"]] == [ref["id"]]
    assert (await _ok(await client.get(f"{API}/referrals/incoming", headers=auth)))[
        "referrals"
    ] == []
    withdrawn = await _ok(
        await client.post(
            f"{API}/referrals/outgoing/{ref['id']}/withdraw",
            json={"reason": "sent_in_error"},
            headers=auth,
        )
    )
    assert withdrawn["state"] == "withdrawn"
    illegal = await client.post(
        f"{API}/referrals/outgoing/{ref['id']}/withdraw", json={"reason": "other"}, headers=auth
    )
    assert illegal.status == 409
    got = await _ok(await client.get(f"{API}/referrals/outgoing/{ref['id']}", headers=auth))
    assert [h["event"] for h in got["history"]] == ["send", "withdraw"]
    await _ok(await client.post(f"{API}/consents/{consent['id']}/withdraw", headers=auth))
    consents = await _ok(await client.get(f"{API}/cases/{case_id}/consents", headers=auth))
    assert consents["consents"][0]["valid"] is False


async def test_directory_search(client: Client, api_node: ApiNode) -> None:
    """The stored directory is searchable by service, language and area."""
    auth = api_node.auth
    everyone = await _ok(await client.get(f"{API}/directory", headers=auth))
    assert len(everyone["offices"]) == 3
    jmd = await _ok(await client.get(f"{API}/directory?service=jmd&language=tr", headers=auth))
    assert [o["node_id"] for o in jmd["offices"]] == ["awo-fue"]
    area = await _ok(await client.get(f"{API}/directory?area=erlangen", headers=auth))
    assert [o["node_id"] for o in area["offices"]] == ["diakonie-er"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/cases", {"case_type": "case_management"}),
        ("POST", "/cases", {"case_type": "x", "pseudonym": "p"}),
        ("POST", "/cases", {"case_type": "short_counselling", "pseudonym": "p", "shoe": 1}),
        ("POST", "/cases", [1, 2]),
        ("POST", "/cases", "not json"),
        ("GET", "/cases/not-an-id", None),
        ("GET", "/cases/" + "a" * 32, None),
        ("GET", "/cases?limit=0", None),
        ("GET", "/cases?limit=abc", None),
        ("PATCH", "/cases/" + "a" * 32, {}),
        ("POST", "/referrals/outgoing", {"case_id": "a" * 32}),
        ("POST", "/referrals/incoming/" + "b" * 32 + "/accept", None),
        ("POST", "/referrals/incoming/" + "b" * 32 + "/status", {"outcome": "lost"}),
        ("GET", "/directory?service=cooking", None),
        ("DELETE", "/cases", None),
        ("GET", "/nothing-here", None),
    ],
)
async def test_bad_input_gives_4xx_problem(
    client: Client, api_node: ApiNode, method: str, path: str, body: Any
) -> None:
    """Malformed or unknown requests get a 4xx application/problem+json, never a 5xx."""
    kwargs: dict[str, Any] = {"headers": api_node.auth}
    if isinstance(body, str):
        kwargs["data"] = body
        kwargs["headers"] = api_node.auth | {"Content-Type": "application/json"}
    elif body is not None:
        kwargs["json"] = body
    resp = await client.request(method, API + path, **kwargs)
    assert 400 <= resp.status < 500, await resp.text()
    assert resp.content_type == "application/problem+json"
    problem = await resp.json(content_type=None)
    assert problem["status"] == resp.status
    assert "detail" in problem


async def test_wrong_content_type_is_415(client: Client, api_node: ApiNode) -> None:
    """A body that is not JSON by content type is refused with 415."""
    resp = await client.post(f"{API}/cases", data="a=b", headers=api_node.auth)
    assert resp.status == 415


def test_spec_code_lists_match_protocol() -> None:
    """Enums in the spec are the protocol's code lists (no drift between contract and code)."""
    schemas = yaml.safe_load(load_spec_text())["components"]["schemas"]
    pairs = {
        "Gender": codes.GENDER,
        "Residence": codes.RESIDENCE,
        "Topic": codes.TOPIC,
        "ReferralTarget": codes.REFERRAL_TARGET,
        "Closure": codes.CLOSURE,
        "CaseType": codes.CASE_TYPE,
        "Channel": codes.CONTACT_CHANNEL,
        "GermanLevel": codes.GERMAN_LEVEL,
        "ConsentForm": codes.CONSENT_FORM,
        "LegalRegime": codes.LEGAL_REGIME,
        "ClientField": frozenset(CLIENT_FIELDS),
    }
    for name, expected in pairs.items():
        assert set(schemas[name]["enum"]) == set(expected), name
