"""What B refuses: tampered and replayed envelopes; what A refuses: a revoked office."""

from __future__ import annotations

from functools import partial

import pytest

from demo.cluster import ApiError, Office
from demo.processes import cli
from tests.e2e.conftest import Net, add_office, wait_for
from tests.e2e.helpers import (
    consented_referral,
    in_state,
    incoming,
    incoming_ids,
    open_case,
    outgoing,
    record_consent,
    refer,
    sealed_offer,
    status,
    upload_as,
)


def _queued_for(net: Net, msg_id: str) -> int:
    return int(net.hub_query("SELECT count(*) FROM queue WHERE msg_id = ?", (msg_id,))[0][0])


def test_tampered_envelope_is_refused_by_b(net: Net) -> None:
    """One flipped ciphertext bit: the hub relays it, B refuses and counts it, nothing appears."""
    a, b = net.a, net.b
    refused_before = status(b)["refused_messages"]
    incoming_before = set(incoming_ids(b))
    env = sealed_offer(a, b, {"family_name": "Tampered"}, tamper=True)
    answer = upload_as(net.hub.url, a, [env.encode()])
    assert answer == {"accepted": [env.msg_id], "rejected": []}  # the hub cannot tell
    wait_for(lambda: status(b)["refused_messages"] == refused_before + 1, "B refuses it")
    wait_for(lambda: _queued_for(net, env.msg_id) == 0, "B acknowledges it (deleted at the hub)")
    rows = net.node_query(b, "SELECT sender, reason FROM refused WHERE msg_id = ?", (env.msg_id,))
    assert [tuple(r) for r in rows] == [(a.node_id, "bad-signature")]
    assert set(incoming_ids(b)) == incoming_before


def test_replayed_envelope_is_not_delivered_twice(net: Net) -> None:
    """The identical envelope uploaded again: the hub answers idempotently and queues nothing;
    once the hub has forgotten the id, B drops the replay as a duplicate."""
    a, b = net.a, net.b
    seen = set(incoming_ids(b))
    env = sealed_offer(a, b, {"family_name": "Replay"})
    data = env.encode()
    assert upload_as(net.hub.url, a, [data])["accepted"] == [env.msg_id]
    ref_id = wait_for(
        lambda: next(iter(set(incoming_ids(b)) - seen), None), "B receives the original"
    )
    wait_for(lambda: _queued_for(net, env.msg_id) == 0, "B acknowledges the original")
    refused_before = status(b)["refused_messages"]
    count_before = len(incoming_ids(b))

    # 1. The hub still knows the id: accepted again (idempotent), but not queued again.
    assert upload_as(net.hub.url, a, [data]) == {"accepted": [env.msg_id], "rejected": []}
    assert _queued_for(net, env.msg_id) == 0

    # 2. After the hub's relay log forgot the id (log retention), the replay is queued
    #    and reaches B, which drops it by message id and acknowledges it.
    net.hub_execute("DELETE FROM relay_log WHERE msg_id = ?", (env.msg_id,))
    assert upload_as(net.hub.url, a, [data])["accepted"] == [env.msg_id]
    wait_for(lambda: _queued_for(net, env.msg_id) == 0, "B acknowledges the replay")
    assert len(incoming_ids(b)) == count_before
    assert incoming_ids(b).count(ref_id) == 1
    assert status(b)["refused_messages"] == refused_before  # a duplicate, not an attack
    seen_rows = net.node_query(b, "SELECT count(*) FROM inbox_seen WHERE msg_id = ?", (env.msg_id,))
    assert seen_rows[0][0] == 1


def test_revoked_office_leaves_the_directory_and_cannot_be_referred_to(net: Net) -> None:
    """A new office C is usable at once; after `site revoke` A's directory drops it and
    A's referrals to it are refused."""
    a, b = net.a, net.b
    c = add_office(
        net.cluster, "c", Office("Diakonie Erlangen", "Diakonie", ("mbe",), ("de",), "Erlangen")
    )
    try:

        def office_ids() -> set[str]:
            return {o["node_id"] for o in a.api.get("/api/v1/directory")["offices"]}

        # directory_refresh is an hour: only the hub's push frame explains this.
        wait_for(lambda: c.node_id in office_ids(), "A's directory lists the new office", 10)
        early = consented_referral(a, c, family_name="Neu")
        early_case = outgoing(a, early["id"])["case_id"]
        wait_for(lambda: in_state(c, early["id"], "received", out=False), "C receives")

        version = status(a)["directory_version"]
        cli("hub", "site", "revoke", "--dir", str(net.cluster.hub_dir), c.node_id)
        wait_for(lambda: c.node_id not in office_ids(), "A's directory drops C", 10)
        for node in (a, b):
            newer = partial(lambda n: status(n)["directory_version"] > version, node)
            wait_for(newer, "a newer directory")
            assert c.node_id not in {
                o["node_id"] for o in node.api.get("/api/v1/directory")["offices"]
            }

        # A consent recorded while C was active cannot carry a referral to it now,
        # and a new consent cannot even name it.
        with pytest.raises(ApiError) as refused:
            refer(a, early_case, c.node_id, ["family_name"])
        assert refused.value.status == 422
        assert refused.value.problem["type"].endswith("unknown-recipient")
        case = open_case(a, family_name="Zuspät")
        with pytest.raises(ApiError) as no_consent:
            record_consent(a, case["id"], c.node_id, ["family_name"])
        assert no_consent.value.status == 422
        assert f"{c.node_id} is not an active office" in no_consent.value.problem["detail"]
        assert status(a)["outbox_depth"] == 0
        assert incoming(c, early["id"]) is not None
    finally:
        c.service.stop()
        del net.cluster.nodes["c"]
