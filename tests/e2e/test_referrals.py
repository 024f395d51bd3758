"""Referrals between two real nodes through a real hub: flow, outages, consent, withdrawal."""

from __future__ import annotations

from collections import Counter
from functools import partial

import pytest

from demo.cluster import ApiError
from tests.e2e.conftest import Net, wait_for
from tests.e2e.helpers import (
    consented_referral,
    in_state,
    incoming,
    incoming_ids,
    open_case,
    outgoing,
    record_consent,
    refer,
    states,
    status,
)


def test_referral_is_delivered_accepted_and_completed(net: Net) -> None:
    """A→B arrives, B accepts into a new case, and every state flows back to A in order."""
    a, b = net.a, net.b
    ref = consented_referral(a, b, given_name="Amira", family_name="Haddad", phone="0911 123")
    assert ref["state"] == "sent"
    got = wait_for(lambda: in_state(b, ref["id"], "received", out=False), "B receives")
    assert got["peer"] == a.node_id
    assert got["client"] == {"given_name": "Amira", "family_name": "Haddad", "phone": "0911 123"}
    assert ref["id"] in incoming_ids(b)
    wait_for(lambda: in_state(a, ref["id"], "delivered"), "A sees the receipt")

    accepted = b.api.post(f"/api/v1/referrals/incoming/{ref['id']}/accept", {})
    assert accepted["state"] == "accepted"
    case = b.api.get(f"/api/v1/cases/{accepted['case_id']}")
    assert (case["given_name"], case["family_name"], case["phone"]) == (
        "Amira",
        "Haddad",
        "0911 123",
    )
    assert case["origin_referral"] == ref["id"]
    wait_for(lambda: in_state(a, ref["id"], "accepted"), "A sees the acceptance")

    path = f"/api/v1/referrals/incoming/{ref['id']}/status"
    b.api.post(path, {"outcome": "first_appointment"})
    wait_for(lambda: in_state(a, ref["id"], "first_appointment"), "A sees the first appointment")
    b.api.post(path, {"outcome": "completed_successful"})
    done = wait_for(lambda: in_state(a, ref["id"], "completed_successful"), "A sees completion")
    assert states(done) == [
        "sent",
        "delivered",
        "accepted",
        "first_appointment",
        "completed_successful",
    ]


def test_offline_recipient_gets_the_referral_after_starting(net: Net) -> None:
    """With B stopped the hub holds A's referral; B receives it once it runs again."""
    a, b = net.a, net.b
    b.service.stop()
    ref = consented_referral(a, b, family_name="Yilmaz")
    wait_for(lambda: status(a)["outbox_depth"] == 0, "A's upload acknowledged by the hub")
    queued = net.hub_query("SELECT count(*) FROM queue WHERE recipient = ?", (b.node_id,))
    assert queued[0][0] >= 1
    assert in_state(a, ref["id"], "sent") is not None
    b.service.start()
    wait_for(lambda: in_state(b, ref["id"], "received", out=False), "B receives after start")
    wait_for(lambda: in_state(a, ref["id"], "delivered"), "A sees the receipt")


def test_hub_crash_loses_nothing_and_delivers_nothing_twice(net: Net) -> None:
    """SIGKILL of the hub between A's acknowledged upload and B's fetch: exactly one delivery."""
    a, b = net.a, net.b
    before = len(incoming_ids(b))
    b.service.stop()  # B must not fetch before the crash
    first = consented_referral(a, b, family_name="Kowalski")
    wait_for(lambda: status(a)["outbox_depth"] == 0, "A's upload acknowledged by the hub")
    net.hub.kill()
    # While the hub is down the API still takes referrals into the outbox.
    second = consented_referral(a, b, family_name="Nowak")
    assert status(a)["outbox_depth"] >= 1
    net.hub.start()
    b.service.start()
    for ref in (first, second):
        wait_for(partial(in_state, b, ref["id"], "received", out=False), "B receives")
        wait_for(partial(in_state, a, ref["id"], "delivered"), "A sees the receipt")
    b.api.post(f"/api/v1/referrals/incoming/{first['id']}/accept", {})
    wait_for(lambda: in_state(a, first["id"], "accepted"), "A sees the acceptance")

    ids = incoming_ids(b)
    assert Counter(ids)[first["id"]] == 1
    assert Counter(ids)[second["id"]] == 1
    assert len(ids) == before + 2
    assert states(outgoing(a, first["id"])) == ["sent", "delivered", "accepted"]
    assert states(outgoing(a, second["id"])) == ["sent", "delivered"]
    # Receipts and replies were acknowledged too: nothing is left queued for either office.
    wait_for(
        lambda: (
            net.hub_query(
                "SELECT count(*) FROM queue WHERE recipient IN (?, ?)", (a.node_id, b.node_id)
            )[0][0]
            == 0
        ),
        "the hub's queue for A and B to drain",
    )


@pytest.mark.parametrize("case", ["no_consent", "field_outside_consent"])
def test_referral_without_covering_consent_is_refused_and_nothing_sent(net: Net, case: str) -> None:
    """No consent, or a field outside it: 422, A's outbox stays empty, nothing reaches the hub."""
    a, b = net.a, net.b
    sent_before = net.hub_query("SELECT count(*) FROM relay_log WHERE sender = ?", (a.node_id,))
    incoming_before = set(incoming_ids(b))
    c = open_case(a, family_name="Schmidt", phone="0911 999")
    if case == "field_outside_consent":
        record_consent(a, c["id"], b.node_id, ["family_name"])
    with pytest.raises(ApiError) as refused:
        refer(a, c["id"], b.node_id, ["family_name", "phone"])
    assert refused.value.status == 422
    assert refused.value.problem["status"] == 422
    assert "0911 999" not in str(refused.value.problem)  # names fields, never values
    assert status(a)["outbox_depth"] == 0
    outgoing_cases = [r["case_id"] for r in a.api.get("/api/v1/referrals/outgoing")["referrals"]]
    assert c["id"] not in outgoing_cases
    # A barrier: a good referral sent afterwards arrives; the outbox is first in, first out,
    # so anything the refusals had queued would have travelled before it.
    good = consented_referral(a, b, family_name="Barrier")
    wait_for(lambda: in_state(b, good["id"], "received", out=False), "the barrier arrives")
    sent_after = net.hub_query("SELECT count(*) FROM relay_log WHERE sender = ?", (a.node_id,))
    assert sent_after[0][0] == sent_before[0][0] + 1
    assert set(incoming_ids(b)) - incoming_before == {good["id"]}


def test_withdrawn_referral_is_deleted_at_b_and_confirmed_to_a(net: Net) -> None:
    """A withdraws: B drops the client data (and the case made from it), A sees the confirmation."""
    a, b = net.a, net.b
    received = consented_referral(a, b, given_name="Lejla", family_name="Hodzic")
    accepted = consented_referral(a, b, given_name="Dragan", family_name="Petrovic")
    for ref in (received, accepted):
        wait_for(partial(in_state, a, ref["id"], "delivered"), "A sees the receipt")
    case_id = b.api.post(f"/api/v1/referrals/incoming/{accepted['id']}/accept", {})["case_id"]
    wait_for(lambda: in_state(a, accepted["id"], "accepted"), "A sees the acceptance")

    for ref in (received, accepted):
        a.api.post(
            f"/api/v1/referrals/outgoing/{ref['id']}/withdraw", {"reason": "consent_withdrawn"}
        )
    for ref in (received, accepted):
        done = wait_for(
            partial(in_state, a, ref["id"], "withdrawal_confirmed"), "A sees the confirmation"
        )
        assert states(done)[-2:] == ["withdrawn", "withdrawal_confirmed"]
        at_b = incoming(b, ref["id"])
        assert at_b is not None
        assert at_b["state"] == "withdrawn"
        assert at_b.get("client") is None
    case = b.api.get(f"/api/v1/cases/{case_id}")
    assert case["given_name"] is None
    assert case["family_name"] is None
    # Nothing of the client is left in B's tables either (not only hidden by the API).
    for name in ("Lejla", "Hodzic", "Dragan", "Petrovic"):
        rows = net.node_query(
            b, "SELECT count(*) FROM referrals WHERE client LIKE ?", (f"%{name}%",)
        )
        assert rows[0][0] == 0, name
        rows = net.node_query(
            b,
            "SELECT count(*) FROM cases WHERE given_name = ? OR family_name = ?",
            (name, name),
        )
        assert rows[0][0] == 0, name
