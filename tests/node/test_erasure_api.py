"""The erasure routes through the aiohttp test client, checked against the spec."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api.keys import STORE
from tests.node.conftest import CASE, ApiNode, consent_for

Client = TestClient[web.Request, web.Application]
API = "/api/v1"
MARKER = "Zqxapierasure"


async def _answer(resp: Any, status: int) -> Any:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    return body


async def case_with_referral(
    client: Client, auth: dict[str, str], family_name: str = MARKER
) -> tuple[str, str]:
    """A case (family name `family_name`) with a consent and a referral to awo-fue."""
    case = await _answer(
        await client.post(f"{API}/cases", json={**CASE, "family_name": family_name}, headers=auth),
        201,
    )
    fields = ["family_name", "topics"]
    await _answer(
        await client.post(
            f"{API}/cases/{case['id']}/consents", json=consent_for("awo-fue", fields), headers=auth
        ),
        201,
    )
    ref = await _answer(
        await client.post(
            f"{API}/referrals/outgoing",
            json={
                "case_id": case["id"],
                "recipient": "awo-fue",
                "target_type": "jmd",
                "fields": fields,
            },
            headers=auth,
        ),
        201,
    )
    return str(case["id"]), str(ref["id"])


async def test_erase_case_then_everything_about_it_is_gone(
    client: Client, api_node: ApiNode
) -> None:
    auth = api_node.auth
    case_id, rid = await case_with_referral(client, auth)
    erased = await _answer(
        await client.delete(f"{API}/cases/{case_id}?reason=client_request", headers=auth), 200
    )
    assert erased["notices"] == [{"referral_id": rid, "peer": "awo-fue", "sealed": True}]
    for path in (f"cases/{case_id}", f"cases/{case_id}/contacts", f"cases/{case_id}/consents"):
        gone = await _answer(await client.get(f"{API}/{path}", headers=auth), 410)
        assert MARKER not in str(gone)
    again = await _answer(
        await client.delete(f"{API}/cases/{case_id}?reason=client_request", headers=auth), 410
    )
    assert case_id in again["detail"]
    listing = await _answer(await client.get(f"{API}/erasures", headers=auth), 200)
    (notice,) = listing["notices"]
    assert (notice["referral_id"], notice["receipt"], notice["overdue"]) == (rid, None, False)
    status = await _answer(await client.get(f"{API}/status", headers=auth), 200)
    assert status["erasures_waiting"] == 1
    ref = await _answer(await client.get(f"{API}/referrals/outgoing/{rid}", headers=auth), 200)
    assert ref["history"][-1]["event"] == "erasure_requested"
    store = client.app[STORE]
    rows = await store.run(
        lambda: store.db.execute(
            "SELECT action FROM audit WHERE case_id = ? ORDER BY seq", (case_id,)
        ).fetchall()
    )
    assert ("case.erase",) in rows


async def test_bad_erasure_requests(client: Client, api_node: ApiNode) -> None:
    """An unknown case 404, a missing or unknown reason 400, a held case 409 naming
    the hold's reason code; no problem carries a client value."""
    auth = api_node.auth
    missing = "0" * 32
    await _answer(await client.delete(f"{API}/cases/{missing}?reason=other", headers=auth), 404)
    case_id, _ = await case_with_referral(client, auth)
    await _answer(await client.delete(f"{API}/cases/{case_id}", headers=auth), 400)
    await _answer(await client.delete(f"{API}/cases/{case_id}?reason=because", headers=auth), 400)
    store = client.app[STORE]
    await store.run(
        lambda: store.db.execute(
            "INSERT INTO retention_holds (case_id, reason, since) VALUES (?, 'legal_claim', 0)",
            (case_id,),
        )
    )
    held = await _answer(
        await client.delete(f"{API}/cases/{case_id}?reason=client_request", headers=auth), 409
    )
    assert "legal_claim" in held["detail"]
    assert MARKER not in str(held)
    case = await _answer(await client.get(f"{API}/cases/{case_id}", headers=auth), 200)
    assert case["family_name"] == MARKER, "a refused erasure changes nothing"


async def test_settle_unknown_request_is_404(client: Client, api_node: ApiNode) -> None:
    resp = await client.post(f"{API}/erasure-requests/{'1' * 32}/settle", headers=api_node.auth)
    await _answer(resp, 404)
