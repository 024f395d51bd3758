"""Client data never reaches the hub's files or anyone's log: markers in every field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from demo.cluster import ApiError
from protocol.payloads import CLIENT_FIELDS
from tests.e2e.conftest import Net, wait_for
from tests.e2e.helpers import in_state, open_case, record_consent, refer

# Valid values for the fields that are codes or numbers; every text field gets a marker.
CODED = {
    "birth_year": 1987,
    "gender": "female",
    "nationality": "SY",
    "residence_status": "residence_permit",
    "languages": ["ar", "ku"],
    "german_level": "B1",
    "topics": ["housing", "language_course"],
    "family_members": 3,
}
TEXT_FIELDS = sorted(set(CLIENT_FIELDS) - set(CODED))


def _marker(tag: str) -> str:
    # ASCII, so it is the same bytes in SQLite, JSON log lines and any other encoding.
    return f"ZZMARK{tag.upper().replace('_', '')}{os.urandom(6).hex()}"


def _bytes_under(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _hits(markers: dict[str, str], blobs: dict[Path, bytes]) -> list[tuple[str, str]]:
    return [
        (name, path.name)
        for name, marker in markers.items()
        for path, data in blobs.items()
        if marker.encode() in data
    ]


def test_markers_never_reach_hub_files_or_any_log(net: Net) -> None:
    """Markers in every client field, case field, referral note and decline note travel
    A→B and back, yet appear in no hub file (db, WAL, SHM), no hub log line, no node log line."""
    a, b = net.a, net.b
    assert set(CODED) | set(TEXT_FIELDS) == set(CLIENT_FIELDS)  # the test covers every field
    sent = {f"client_{f}": _marker(f) for f in TEXT_FIELDS}
    local = {f"case_{f}": _marker(f) for f in ("pseudonym", "counsellor", "purpose", "goal")}
    extra = {"referral_note": _marker("refnote"), "decline_note": _marker("declnote")}
    markers = sent | local | extra

    case = open_case(
        a,
        pseudonym=local["case_pseudonym"],
        counsellor=local["case_counsellor"],
        **{f: sent[f"client_{f}"] for f in TEXT_FIELDS},
        **CODED,
    )
    a.api.post(
        f"/api/v1/cases/{case['id']}/agreements",
        {
            "agreed": "2026-01-15",
            "goals": [{"goal": local["case_goal"], "measure": "Kurs", "status": "open"}],
        },
    )
    a.api.post(
        f"/api/v1/cases/{case['id']}/contacts",
        {"date": "2026-01-15", "channel": "in_person", "minutes": 45, "topics": ["housing"]},
    )
    every_field = sorted(CLIENT_FIELDS)
    consent = a.api.post(
        f"/api/v1/cases/{case['id']}/consents",
        {
            "purpose": local["case_purpose"],
            "recipient": b.node_id,
            "fields": every_field,
            "form": "written",
            "legal_regime": "gdpr",
        },
    )
    assert consent["valid"] is True
    # Two referrals: one with every field from the case, one whose note is the referral's own.
    first = refer(a, case["id"], b.node_id, every_field)
    second = refer(a, case["id"], b.node_id, every_field, note=extra["referral_note"])
    # A refused referral (field outside a consent) must not leak through its error path.
    other = open_case(a, family_name=_marker("unused"), phone=sent["client_phone"])
    record_consent(a, other["id"], b.node_id, ["family_name"])
    with pytest.raises(ApiError) as refused:
        refer(a, other["id"], b.node_id, ["family_name", "phone"])
    assert refused.value.status == 422
    assert sent["client_phone"] not in str(refused.value.problem)

    got = wait_for(lambda: in_state(b, first["id"], "received", out=False), "B receives")
    assert got["client"]["family_name"] == sent["client_family_name"]
    wait_for(lambda: in_state(b, second["id"], "received", out=False), "B receives the second")
    b.api.post(f"/api/v1/referrals/incoming/{first['id']}/accept", {})
    b.api.post(
        f"/api/v1/referrals/incoming/{second['id']}/decline",
        {"reason": "no_capacity", "note": extra["decline_note"]},
    )
    wait_for(lambda: in_state(a, first["id"], "accepted"), "A sees the acceptance")
    wait_for(lambda: in_state(a, second["id"], "declined"), "A sees the decline")
    b.api.post(f"/api/v1/referrals/incoming/{first['id']}/status", {"outcome": "first_appointment"})
    wait_for(lambda: in_state(a, first["id"], "first_appointment"), "A sees the appointment")

    root = net.cluster.root
    hub_files = _bytes_under(net.cluster.hub_dir)
    assert {"hub.db", "hub.db-wal"} <= {p.name for p in hub_files}
    logs = {p: p.read_bytes() for p in sorted(root.glob("*.log"))}
    assert {"hub.log", "a.log", "b.log"} <= {p.name for p in logs}

    # Positive controls: the same scan finds the markers where they belong, and the
    # logs scanned are the ones that recorded this very flow.
    at_a = _bytes_under(a.service.data_dir)
    # The decline note travels sealed and is kept at A for the counsellor to read.
    assert {name for name, _ in _hits(markers, at_a)} == set(markers)
    at_b = _bytes_under(b.service.data_dir)
    assert {name for name, _ in _hits(sent, at_b)} == set(sent)
    assert first["id"].encode() in logs[root / "a.log"]
    assert f'"sender": "{a.node_id}"'.encode() in logs[root / "b.log"]  # inbox.applied lines
    assert b"relay.stored" in logs[root / "hub.log"]

    assert _hits(markers, hub_files) == []
    assert _hits(markers, logs) == []
