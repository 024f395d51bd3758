"""Answering received referrals through the API: accept (opens a case), status, decline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api.app import create_app
from node.api.keys import STORE
from tests.node.conftest import CASE, T0, consent_for, make_api_node, make_office, open_outbox

Client = TestClient[web.Request, web.Application]
API = "/api/v1"
FIELDS = ["family_name", "languages", "note"]


async def _send_two_referrals(client: Client) -> list[str]:
    """A (in memory) refers two cases to the API node B; B's store applies the offers."""
    sender = make_office("caritas-nbg")
    ids = []
    for _ in range(2):
        case_id = sender.store.cases.create(dict(CASE))
        sender.store.consents.record(case_id, consent_for("awo-fue", FIELDS))
        ref = sender.store.referrals.create(
            {"case_id": case_id, "recipient": "awo-fue", "target_type": "jmd", "fields": FIELDS}
        )
        ids.append(ref.referral_id)
    receiver = client.app[STORE]
    for inner in open_outbox(sender, make_office("awo-fue", enrolled=False)):
        await receiver.run(receiver.sync.apply_incoming, inner, T0)
    return ids


async def _post(client: Client, path: str, auth: dict[str, str], body: Any, status: int) -> Any:
    resp = await client.post(API + path, json=body, headers=auth)
    data = await resp.json(content_type=None)
    assert resp.status == status, data
    return data


async def test_accept_report_and_decline(tmp_path: Path, aiohttp_client: Any) -> None:
    """Received referrals show their data; accept opens a case; status and decline go out."""
    node = make_api_node(tmp_path, "awo-fue")
    client: Client = await aiohttp_client(create_app(node.settings, deps=node.deps))
    first, second = await _send_two_referrals(client)
    auth = node.auth
    listed = await (
        await client.get(f"{API}/referrals/incoming?state=received", headers=auth)
    ).json()
    assert {r["id"] for r in listed["referrals"]} == {first, second}
    got = await (await client.get(f"{API}/referrals/incoming/{first}", headers=auth)).json()
    assert got["client"]["family_name"] == "Haddad"
    assert got["peer"] == "caritas-nbg"

    accepted = await _post(
        client, f"/referrals/incoming/{first}/accept", auth, {"counsellor": "Herr B."}, 200
    )
    assert accepted["state"] == "accepted"
    assert accepted["client"] is None
    case = await (await client.get(f"{API}/cases/{accepted['case_id']}", headers=auth)).json()
    assert (case["family_name"], case["counsellor"], case["origin_referral"]) == (
        "Haddad",
        "Herr B.",
        first,
    )
    path = f"/referrals/incoming/{first}/status"
    await _post(client, path, auth, {"outcome": "completed_unsuccessful"}, 422)
    await _post(client, path, auth, {"outcome": "first_appointment", "date": "2026-09-22"}, 200)
    done = await _post(
        client, path, auth, {"outcome": "completed_unsuccessful", "reason": "verzogen"}, 200
    )
    assert done["state"] == "completed_unsuccessful"
    await _post(client, f"/referrals/incoming/{first}/accept", auth, None, 409)

    declined = await _post(
        client, f"/referrals/incoming/{second}/decline", auth, {"reason": "no_capacity"}, 200
    )
    assert (declined["state"], declined["reason"], declined["client"]) == (
        "declined",
        "no_capacity",
        None,
    )
    status = await (await client.get(f"{API}/status", headers=auth)).json()
    # two receipts, one accept reply, two status reports, one decline reply
    assert status["outbox_depth"] == 6
    assert status["inbox_depth"] == 0
