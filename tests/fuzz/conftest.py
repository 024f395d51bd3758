"""A live hub and two office nodes as real processes, with records to fuzz against."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo.cluster import ApiError, Cluster, Node, Office

API = "/api/v1"

OFFICE_A = Office("Caritas Nürnberg", "Caritas", ("mbe",), ("de", "ar"), "Nürnberg")
OFFICE_B = Office("AWO Fürth", "AWO", ("mbe", "jmd"), ("de", "tr"), "Fürth")


@dataclass(frozen=True)
class LiveNode:
    """Node B of a running cluster and ids of records that exist on it."""

    node: Node
    peer: Node
    case_id: str
    agreement_id: str
    consent_id: str
    incoming_id: str

    @property
    def base_url(self) -> str:
        return self.node.service.url

    @property
    def token(self) -> str:
        return self.node.api.token


def _wait_incoming(node: Node, referral_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            node.api.get(f"{API}/referrals/incoming/{referral_id}")
            return
        except ApiError as exc:
            if exc.status != 404:
                raise
        time.sleep(0.05)
    raise AssertionError("the referral did not arrive at node B within 30 s")


def _records(a: Node, b: Node) -> LiveNode:
    """A case with an agreement and consent on B, and a referral A -> B waiting at B."""
    case = {
        "case_type": "case_management",
        "pseudonym": "K-0001",
        "given_name": "Amina",
        "family_name": "Haddad",
        "phone": "0151 1234567",
        "languages": ["ar"],
        "topics": ["housing", "language_course"],
    }
    case_id = b.api.post(f"{API}/cases", case)["id"]
    goals = [{"goal": "Wohnung finden", "measure": "WBS beantragen", "status": "open"}]
    agreement_id = b.api.post(
        f"{API}/cases/{case_id}/agreements", {"agreed": "2026-01-05", "goals": goals}
    )["id"]
    consent = {
        "purpose": "Weiterleitung",
        "recipient": a.node_id,
        "fields": ["given_name", "family_name", "topics"],
        "form": "written",
        "legal_regime": "gdpr",
    }
    consent_id = b.api.post(f"{API}/cases/{case_id}/consents", consent)["id"]
    a_case = a.api.post(f"{API}/cases", case)["id"]
    a.api.post(f"{API}/cases/{a_case}/consents", consent | {"recipient": b.node_id})
    incoming_id = a.api.post(
        f"{API}/referrals/outgoing",
        {
            "case_id": a_case,
            "recipient": b.node_id,
            "target_type": "jmd",
            "fields": ["given_name", "topics"],
        },
    )["id"]
    _wait_incoming(b, incoming_id)
    return LiveNode(b, a, case_id, agreement_id, consent_id, incoming_id)


@pytest.fixture(scope="module")
def live_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    """Node B, enrolled next to node A, with one case of its own and one incoming referral."""
    root: Path = tmp_path_factory.mktemp("fuzz-cluster")
    cluster = Cluster(root)
    try:
        cluster.start_hub()
        a = cluster.add_node("a", OFFICE_A, start=False)
        b = cluster.add_node("b", OFFICE_B, start=False)
        a.service.start()
        b.service.start()
        cluster.wait_directory()
        yield _records(a, b)
    finally:
        cluster.stop()
