"""Fixtures for node tests: fixed keys, a signed directory, enrolled in-memory stores."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api.app import create_app
from node.clock import Deps
from node.config import NodeSettings, load_settings
from node.datadir import init_data_dir
from node.storage.store import NodeStore
from node.sync.ports import EnrollmentState
from protocol.documents import Directory, OfficeEntry
from protocol.envelope import Envelope, InnerMessage, open_envelope
from protocol.keys import PrivateKeys
from tests.clocks import T0 as T0  # re-exported: node tests import these from here
from tests.clocks import CountingRandom
from tests.clocks import FakeClock as FakeClock


def keys_from(label: str) -> PrivateKeys:
    seed = hashlib.sha256(b"sign:" + label.encode()).digest()
    secret = hashlib.sha256(b"enc:" + label.encode()).digest()
    return PrivateKeys(sign_seed=seed, encrypt_secret=secret)


HUB = keys_from("hub")
OFFICES = {
    "caritas-nbg": ("Caritas Nürnberg", "caritas", ("mbe", "debt_counselling"), ("de", "ar")),
    "awo-fue": ("AWO Fürth", "awo", ("mbe", "jmd"), ("de", "tr", "ru")),
    "diakonie-er": ("Diakonie Erlangen", "diakonie", ("psychosocial",), ("de", "uk")),
}


def office_entry(node_id: str, status: str = "active") -> OfficeEntry:
    name, org, services, languages = OFFICES[node_id]
    return OfficeEntry(
        node_id=node_id,
        name=name,
        org=org,
        services=services,
        languages=languages,
        area=name.split()[-1],
        keys=keys_from(node_id).public,
        status=status,
    )


def signed_directory(
    version: int = 1, expires: int = T0 + 30 * 86400, revoked: frozenset[str] = frozenset()
) -> bytes:
    offices = tuple(
        office_entry(n, "revoked" if n in revoked else "active") for n in sorted(OFFICES)
    )
    return Directory(
        version=version, issued=T0 - 60, expires=expires, region="Mittelfranken", offices=offices
    ).sign(HUB)


@dataclass
class Office:
    """One enrolled node's store with its fake clock."""

    node_id: str
    store: NodeStore
    clock: FakeClock
    keys: PrivateKeys = field(init=False)

    def __post_init__(self) -> None:
        self.keys = keys_from(self.node_id)


def make_office(
    node_id: str,
    *,
    enrolled: bool = True,
    clock: FakeClock | None = None,
    db_path: str = ":memory:",
) -> Office:
    clock = clock or FakeClock()
    deps = Deps(clock=clock, random=CountingRandom(node_id))
    store = NodeStore.open(db_path, keys_from(node_id), deps, message_ttl=14 * 86400)
    if enrolled:
        store.sync.save_enrollment(
            EnrollmentState(
                node_id=node_id,
                hub_urls=("http://127.0.0.1:1",),
                hub_keys=HUB.public,
                certificate=b"cert",
                enrolled_at=T0 - 3600,
            )
        )
        store.sync.store_directory(1, signed_directory(), None)
    return Office(node_id=node_id, store=store, clock=clock)


def open_outbox(sender: Office, recipient: Office) -> list[InnerMessage]:
    """Open every pending envelope from `sender` addressed to `recipient`."""
    out = []
    for msg in sender.store.sync.outbox_pending(1000):
        if msg.recipient != recipient.node_id:
            continue
        env = Envelope.decode(msg.envelope)
        out.append(
            open_envelope(
                env, recipient.keys, recipient.node_id, sender.keys.public, now=recipient.clock.t
            )
        )
    return out


def deliver(sender: Office, recipient: Office) -> list[InnerMessage]:
    """Move sender's outbox to recipient as the hub and sync worker would."""
    msgs = open_outbox(sender, recipient)
    for inner in msgs:
        recipient.store.sync.apply_incoming(inner, recipient.clock.t)
    sender.store.sync.outbox_accepted([m.msg_id for m in msgs], sender.clock.t)
    return msgs


@pytest.fixture
def office_a() -> Iterator[Office]:
    o = make_office("caritas-nbg")
    yield o
    o.store.close()


@pytest.fixture
def office_b() -> Iterator[Office]:
    o = make_office("awo-fue")
    yield o
    o.store.close()


CASE = {
    "case_type": "case_management",
    "pseudonym": "K-2026-001",
    "counsellor": "Beraterin 1",
    "given_name": "Amina",
    "family_name": "Haddad",
    "birth_year": 1990,
    "gender": "female",
    "nationality": "SY",
    "residence_status": "residence_permit",
    "entry_month": "2021-04",
    "german_level": "B1",
    "languages": ["ar", "de"],
    "family_members": 2,
    "topics": ["housing", "language_course"],
    "phone": "+49 911 000000",
    "note": "Braucht Unterstützung bei der Wohnungssuche",
}


def consent_for(recipient: str, fields: list[str], **extra: object) -> dict[str, object]:
    return {
        "purpose": "Weiterleitung an Fachdienst",
        "recipient": recipient,
        "fields": fields,
        "given": "2026-09-01",
        "form": "written",
        "legal_regime": "gdpr",
        **extra,
    }


# ------------------------------------------------------------------ API fixtures


@dataclass
class ApiNode:
    """An initialised data dir with an enrolled node and an app token."""

    settings: NodeSettings
    token: str
    clock: FakeClock
    deps: Deps

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_api_node(root: Path, node_id: str = "caritas-nbg") -> ApiNode:
    data_dir = root / node_id
    init_data_dir(data_dir, OFFICES[node_id][0], keys=keys_from(node_id))
    settings = load_settings(data_dir)
    clock = FakeClock()
    deps = Deps(clock=clock, random=CountingRandom(node_id + "-api"))
    store = NodeStore.open(settings.db_path, keys_from(node_id), deps, message_ttl=86400)
    store.sync.save_enrollment(
        EnrollmentState(
            node_id=node_id,
            hub_urls=("http://127.0.0.1:1",),
            hub_keys=HUB.public,
            certificate=b"cert",
            enrolled_at=T0 - 3600,
        )
    )
    store.sync.store_directory(1, signed_directory(), None)
    token = store.access.create_token("test-app")
    store.close()
    return ApiNode(settings=settings, token=token, clock=clock, deps=deps)


@pytest.fixture
def api_node(tmp_path: Path) -> ApiNode:
    return make_api_node(tmp_path)


@pytest.fixture
async def client(
    api_node: ApiNode, aiohttp_client: Any
) -> TestClient[web.Request, web.Application]:
    app = create_app(api_node.settings, deps=api_node.deps)
    result: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    return result
