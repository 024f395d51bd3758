"""The sync layer logs event names and ids, never message contents."""

from __future__ import annotations

import time

from structlog.testing import capture_logs

from node.sync.ports import OutgoingMessage
from node.sync.worker import SyncWorker
from protocol.payloads import Consent, ReferralOffer
from tests.sync.fakehub import FakeHub
from tests.sync.helpers import Office, fast_settings, sealed

MARKERS = ("Zeynep-MARKER-7731", "Yilmaz-MARKER-4410", "0911-MARKER-555", "MARKER-Hauptstr")


async def test_no_client_field_reaches_a_log_line(
    hub: FakeHub, office_a: Office, office_b: Office
) -> None:
    """A referral full of marker strings is delivered and applied; no log event holds a marker."""
    fields = ("given_name", "family_name", "phone", "address", "note")
    offer = ReferralOffer(
        referral_id="12" * 16,
        target_type="mbe",
        consent=Consent(
            consent_id="34" * 16,
            given="2026-11-02",
            form="written",
            legal_regime="gdpr",
            fields=fields,
        ),
        client=dict(zip(fields, (*MARKERS, "MARKER-note"), strict=True)),
    )
    msg_id, data = sealed(
        office_a.node_id, office_a.keys, office_b.node_id, office_b.public, payload=offer
    )
    office_a.store.put(OutgoingMessage(msg_id, office_b.node_id, data, int(time.time()) + 3600))
    with capture_logs() as logs:
        await SyncWorker(fast_settings(), office_a.store, office_a.keys).sync_once()
        worker_b = SyncWorker(fast_settings(), office_b.store, office_b.keys)
        await worker_b.sync_once()
        await worker_b.stop()
    assert [m.msg_id for m in office_b.store.applied] == [msg_id]
    assert any(e["event"] == "inbox.applied" for e in logs)
    text = repr(logs)
    assert "MARKER" not in text
