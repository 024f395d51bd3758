"""apply_incoming reports a message it cannot apply as refused or deferred, and rolls it back."""

from __future__ import annotations

import pytest

from node.sync.errors import ApplyDeferred, ApplyRefused
from protocol.errors import MalformedError
from tests.node.conftest import CASE, Office, consent_for, open_outbox

FIELDS = ["given_name", "family_name"]


def _offer(sender: Office, recipient: Office) -> None:
    case_id = sender.store.cases.create(dict(CASE))
    sender.store.consents.record(case_id, consent_for(recipient.node_id, FIELDS))
    sender.store.referrals.create(
        {"case_id": case_id, "recipient": recipient.node_id, "target_type": "mbe", "fields": FIELDS}
    )


def _nothing_kept(office: Office) -> bool:
    db = office.store.db
    return (
        db.execute("SELECT COUNT(*) FROM inbox_seen").fetchone()[0] == 0
        and db.execute("SELECT COUNT(*) FROM referrals").fetchone()[0] == 0
        and office.store.sync.outbox_pending(10) == []
    )


def test_an_answer_that_cannot_be_sealed_is_a_refusal(
    office_a: Office, office_b: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sealing the receipt fails for good (unusable key): ApplyRefused, nothing kept."""
    _offer(office_a, office_b)
    [inner] = open_outbox(office_a, office_b)

    def broken_seal(*args: object, **kwargs: object) -> object:
        raise MalformedError("not a usable X25519 key")

    monkeypatch.setattr("node.storage.network.seal", broken_seal)
    with pytest.raises(ApplyRefused, match="malformed"):
        office_b.store.sync.apply_incoming(inner, office_b.clock.t)
    assert _nothing_kept(office_b)


def test_an_expired_directory_defers_the_message(office_a: Office, office_b: Office) -> None:
    """With the stored directory expired the answer cannot be sealed yet: ApplyDeferred."""
    _offer(office_a, office_b)
    [inner] = open_outbox(office_a, office_b)
    office_b.clock.advance(31 * 86400)  # past the directory's expiry
    with pytest.raises(ApplyDeferred, match="not-enrolled"):
        office_b.store.sync.apply_incoming(inner, office_b.clock.t)
    assert _nothing_kept(office_b)
