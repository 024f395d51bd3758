"""Erasure across real processes: A erases a client it referred to B.

Neither office's database files (db, WAL, SHM) keep any marker of the client,
B's signed deletion receipt reaches A, the notice waits while B is offline,
and a referral B had accepted leaves B's own case flagged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from demo.cluster import Node
from tests.e2e.conftest import Net, wait_for
from tests.e2e.helpers import in_state, incoming, open_case, record_consent, refer

FIELDS = ["family_name", "given_name", "phone", "topics"]


def _markers() -> dict[str, str]:
    return {f: f"ZZERASE{f.upper().replace('_', '')}{os.urandom(6).hex()}" for f in FIELDS[:3]}


def _db_files_with(node: Node, markers: dict[str, str]) -> list[str]:
    data_dir: Path = node.service.data_dir
    hits = []
    for path in sorted(data_dir.glob("node.db*")):
        data = path.read_bytes()
        hits += [f"{path.name}:{name}" for name, m in markers.items() if m.encode() in data]
    return hits


def _referred(net: Net, markers: dict[str, str]) -> tuple[str, str]:
    case = open_case(net.a, topics=["housing"], **markers)
    record_consent(net.a, case["id"], net.b.node_id, [*FIELDS, "note"])
    ref = refer(net.a, case["id"], net.b.node_id, FIELDS, note=f"Notiz {markers['phone']}")
    wait_for(lambda: incoming(net.b, ref["id"]), "the offer at B")
    return case["id"], ref["id"]


def _erase(node: Node, case_id: str) -> dict[str, Any]:
    erased: dict[str, Any] = node.api.call(
        "DELETE", f"/api/v1/cases/{case_id}?reason=client_request"
    )
    return erased


def _notice(node: Node, referral_id: str) -> dict[str, Any] | None:
    for notice in node.api.get("/api/v1/erasures")["notices"]:
        if notice["referral_id"] == referral_id:
            found: dict[str, Any] = notice
            return found
    return None


def _receipt(node: Node, referral_id: str) -> dict[str, Any] | None:
    notice = _notice(node, referral_id)
    return None if notice is None else notice["receipt"]


def test_erasure_before_the_answer_reaches_b_and_leaves_no_trace(net: Net) -> None:
    markers = _markers()
    case_id, rid = _referred(net, markers)
    assert _db_files_with(net.b, markers), "control: B holds the client's data"
    erased = _erase(net.a, case_id)
    assert erased["notices"] == [{"referral_id": rid, "peer": net.b.node_id, "sealed": True}]
    receipt = wait_for(lambda: _receipt(net.a, rid), "B's deletion receipt at A")
    assert receipt["erased"] == sorted([*FIELDS, "note"])
    assert (receipt["kept"], receipt["flagged"]) == ([], False)
    assert receipt["document"], "the signed document is kept"
    assert incoming(net.b, rid)["state"] == "withdrawn"  # type: ignore[index]
    wait_for(lambda: not _db_files_with(net.a, markers), "no marker in A's files")
    wait_for(lambda: not _db_files_with(net.b, markers), "no marker in B's files")


def test_erasure_waits_while_b_is_offline(net: Net) -> None:
    markers = _markers()
    case_id, rid = _referred(net, markers)
    net.b.service.stop()
    try:
        _erase(net.a, case_id)
        notice = wait_for(
            lambda: (n := _notice(net.a, rid)) and n["delivery"] == "accepted" and n,
            "the notice accepted by the hub",
        )
        assert notice["receipt"] is None
        assert net.a.api.get("/api/v1/status")["erasures_waiting"] >= 1
    finally:
        net.b.service.start()
    wait_for(lambda: _receipt(net.a, rid), "B's receipt once B is back", timeout=30)
    wait_for(lambda: not _db_files_with(net.b, markers), "no marker in B's files")
    wait_for(lambda: not _db_files_with(net.a, markers), "no marker in A's files")


def test_an_accepted_referral_leaves_bs_case_flagged(net: Net) -> None:
    markers = _markers()
    case_id, rid = _referred(net, markers)
    accepted = net.b.api.post(f"/api/v1/referrals/incoming/{rid}/accept", {"pseudonym": "B-own"})
    own = accepted["case_id"]
    wait_for(lambda: in_state(net.a, rid, "accepted"), "the acceptance at A")
    _erase(net.a, case_id)
    receipt = wait_for(lambda: _receipt(net.a, rid), "B's receipt at A")
    assert (receipt["kept"], receipt["flagged"]) == (["case"], True)
    requests = net.b.api.get("/api/v1/erasures")["requests"]
    (request,) = [r for r in requests if r["referral_id"] == rid]
    assert (request["case_id"], request["settled"]) == (own, None)
    case = net.b.api.get(f"/api/v1/cases/{own}")
    assert case["pseudonym"] == "B-own"
    assert case["family_name"] is None
    wait_for(lambda: not _db_files_with(net.b, markers), "no marker in B's files")
    settled = net.b.api.post(f"/api/v1/erasure-requests/{rid}/settle")
    assert settled["settlement"] == "case_kept"
