"""Problems say what is allowed: every violation with its rule, never the value sent."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api.app import MAX_BODY
from tests.node.conftest import CASE, ApiNode

Client = TestClient[web.Request, web.Application]
API = "/api/v1"
SECRET = "Zqxproblemvalue"


async def _problem(resp: Any, status: int) -> str:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    assert SECRET not in str(body)
    return str(body["detail"])


async def test_every_violation_is_listed_with_what_is_allowed(
    client: Client, api_node: ApiNode
) -> None:
    bad = {**CASE, "gender": SECRET, "birth_year": 3000, "family_name": SECRET * 20}
    detail = await _problem(await client.post(f"{API}/cases", json=bad, headers=api_node.auth), 400)
    assert "body.gender: must be one of: female, male, diverse, unknown" in detail
    assert "body.birth_year: must be at most" in detail
    assert "body.family_name: must be at most" in detail


async def test_a_query_parameter_names_its_limit_and_values(
    client: Client, api_node: ApiNode
) -> None:
    auth = api_node.auth
    detail = await _problem(await client.get(f"{API}/cases?limit=1000", headers=auth), 400)
    assert detail == "query parameter limit: must be at most 500"
    case = "0" * 32
    detail = await _problem(await client.delete(f"{API}/cases/{case}", headers=auth), 400)
    assert detail == "query parameter reason is required"
    detail = await _problem(
        await client.delete(f"{API}/cases/{case}?reason={SECRET}", headers=auth), 400
    )
    assert "must be one of: client_request, consent_withdrawn, retention, other" in detail


async def test_too_large_a_body_states_the_limit(client: Client, api_node: ApiNode) -> None:
    body = b'{"note": "' + b"x" * MAX_BODY + b'"}'
    headers = api_node.auth | {"Content-Type": "application/json"}
    detail = await _problem(await client.post(f"{API}/cases", data=body, headers=headers), 413)
    assert str(MAX_BODY) in detail
