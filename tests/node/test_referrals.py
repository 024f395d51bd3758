"""Referrals end to end between two stores: consent gate, sealing, incoming messages."""

from __future__ import annotations

import pytest

from node.api.views import view_of
from node.domain.referral_states import IN, OUT
from node.errors import ConsentRefused, IllegalTransition, InvalidInput, NotEnrolled
from node.storage.sync_store import SqliteSyncStore
from node.sync.ports import SyncStore
from protocol.envelope import InnerMessage
from protocol.payloads import ExpiryNotice, ReferralOffer, ReferralReply
from tests.node.conftest import (
    CASE,
    T0,
    Office,
    consent_for,
    deliver,
    make_office,
    open_outbox,
    signed_directory,
)

FIELDS = ["given_name", "family_name", "birth_year", "topics"]


def _case_with_consent(office: Office, recipient: str, fields: list[str], **extra: object) -> str:
    case_id = office.store.cases.create(dict(CASE))
    office.store.consents.record(case_id, consent_for(recipient, fields, **extra))
    return case_id


def _refer(office: Office, case_id: str, fields: list[str], recipient: str = "awo-fue") -> str:
    ref = office.store.referrals.create(
        {"case_id": case_id, "recipient": recipient, "target_type": "mbe", "fields": fields}
    )
    return ref.referral_id


def test_sqlite_sync_store_satisfies_the_protocol(office_a: Office) -> None:
    """SqliteSyncStore type-checks as node.sync.ports.SyncStore and has all its methods."""
    store: SyncStore = office_a.store.sync  # mypy checks this assignment
    assert isinstance(store, SqliteSyncStore)
    wanted = {n for n in vars(SyncStore) if not n.startswith("_")}
    assert wanted <= set(dir(SqliteSyncStore))


def _outbox_count(office: Office) -> int:
    return len(office.store.sync.outbox_pending(1000))


@pytest.mark.parametrize(
    ("consent_recipient", "consent_fields", "extra", "expect"),
    [
        (None, None, {}, "no consent"),
        ("awo-fue", FIELDS, {"expires": "2026-09-10"}, "expired"),
        ("awo-fue", FIELDS, {"withdraw": True}, "withdrawn"),
        ("diakonie-er", FIELDS, {}, "no consent"),
        ("awo-fue", ["given_name", "birth_year"], {}, "family_name, topics"),
    ],
    ids=["none", "expired", "withdrawn", "other-recipient", "field-outside"],
)
def test_consent_gate_refuses_and_nothing_is_queued(
    office_a: Office,
    consent_recipient: str | None,
    consent_fields: list[str] | None,
    extra: dict[str, object],
    expect: str,
) -> None:
    """Without a valid consent covering every field: refused, and the outbox stays empty."""
    case_id = office_a.store.cases.create(dict(CASE))
    if consent_recipient is not None and consent_fields is not None:
        withdraw = extra.pop("withdraw", False)
        consent = office_a.store.consents.record(
            case_id, consent_for(consent_recipient, consent_fields, **extra)
        )
        if withdraw:
            office_a.store.consents.withdraw(consent.consent_id)
    with pytest.raises(ConsentRefused) as info:
        _refer(office_a, case_id, FIELDS)
    assert expect in str(info.value)
    assert "Amina" not in str(info.value)
    assert _outbox_count(office_a) == 0
    assert office_a.store.referrals.list_referrals(OUT) == []


def test_only_consented_fields_travel(office_a: Office, office_b: Office) -> None:
    """The sealed offer, opened with B's keys, carries exactly the requested consented fields."""
    case_id = _case_with_consent(office_a, "awo-fue", [*FIELDS, "phone"])
    referral_id = _refer(office_a, case_id, FIELDS)
    [inner] = open_outbox(office_a, office_b)
    assert isinstance(inner.payload, ReferralOffer)
    assert inner.payload.referral_id == referral_id
    assert dict(inner.payload.client) == {
        "given_name": "Amina",
        "family_name": "Haddad",
        "birth_year": 1990,
        "topics": ["housing", "language_course"],
    }
    assert set(inner.payload.consent.fields) == {*FIELDS, "phone"}
    assert office_a.store.referrals.get(OUT, referral_id).state == "sent"


def test_field_without_value_is_refused(office_a: Office) -> None:
    """A consented field the case has no value for is refused by name, nothing queued."""
    case_id = _case_with_consent(office_a, "awo-fue", ["email"])
    with pytest.raises(InvalidInput, match="email"):
        _refer(office_a, case_id, ["email"])
    assert _outbox_count(office_a) == 0


def test_unenrolled_node_cannot_refer() -> None:
    """A node without enrollment refuses to seal (and queues nothing)."""
    office = make_office("caritas-nbg", enrolled=False)
    case_id = _case_with_consent(office, "awo-fue", FIELDS)
    with pytest.raises(NotEnrolled):
        _refer(office, case_id, FIELDS)
    assert _outbox_count(office) == 0


def test_revoked_recipient_is_refused() -> None:
    """An office the directory lists as revoked cannot be referred to, nor can a new
    consent name it (the refusal lists the offices that can be named)."""
    office = make_office("caritas-nbg")
    case_id = _case_with_consent(office, "awo-fue", FIELDS)
    office.store.sync.store_directory(2, signed_directory(2, revoked=frozenset({"awo-fue"})), None)
    with pytest.raises(Exception, match="not an active office"):
        _refer(office, case_id, FIELDS)
    with pytest.raises(Exception, match="known offices: caritas-nbg, diakonie-er"):
        _case_with_consent(office, "awo-fue", FIELDS)


def test_offer_accept_complete_flow(office_a: Office, office_b: Office) -> None:
    """Offer → receipt → accepted (with a case at B) → first appointment → completed, both sides."""
    case_id = _case_with_consent(office_a, "awo-fue", FIELDS)
    rid = _refer(office_a, case_id, FIELDS)
    deliver(office_a, office_b)
    incoming = office_b.store.referrals.get(IN, rid)
    assert incoming.state == "received"
    assert incoming.client is not None
    assert incoming.client["family_name"] == "Haddad"
    [receipt] = deliver(office_b, office_a)
    assert receipt.type == "receipt"
    assert office_a.store.referrals.get(OUT, rid).state == "delivered"

    accepted = office_b.store.referrals.accept(rid)
    assert accepted.case_id is not None
    assert accepted.client is None
    case_b = office_b.store.cases.get(accepted.case_id)
    assert (case_b["family_name"], case_b["origin_referral"]) == ("Haddad", rid)
    deliver(office_b, office_a)
    assert office_a.store.referrals.get(OUT, rid).state == "accepted"

    office_b.store.referrals.report(rid, "first_appointment", "2026-09-25", None)
    office_b.store.referrals.report(rid, "completed_successful", "2026-10-30", None)
    deliver(office_b, office_a)
    out = office_a.store.referrals.get(OUT, rid)
    assert out.state == "completed_successful"
    events = [h["event"] for h in office_a.store.referrals.history(OUT, rid)]
    assert events == ["send", "receipt", "accepted", "first_appointment", "completed_successful"]


def test_decline_flows_back_with_reason(office_a: Office, office_b: Office) -> None:
    """A decline reaches A with its reason and note, and B drops the received client data."""
    rid = _refer(office_a, _case_with_consent(office_a, "awo-fue", FIELDS), FIELDS)
    deliver(office_a, office_b)
    declined = office_b.store.referrals.decline(rid, "no_capacity", "Warteliste bis März")
    assert declined.client is None
    deliver(office_b, office_a)
    out = office_a.store.referrals.get(OUT, rid)
    assert (out.state, out.reason) == ("declined", "no_capacity")
    assert out.reply_note == "Warteliste bis März"
    assert view_of(office_a.store, out)["reply_note"] == "Warteliste bis März"
    with pytest.raises(IllegalTransition):
        office_b.store.referrals.accept(rid)


def test_reply_overtaking_receipt_still_counts_as_delivered(
    office_a: Office, office_b: Office
) -> None:
    """A reply that arrives before the receipt records delivery first, then the decision."""
    rid = _refer(office_a, _case_with_consent(office_a, "awo-fue", FIELDS), FIELDS)
    deliver(office_a, office_b)
    office_b.store.referrals.accept(rid)
    msgs = open_outbox(office_b, office_a)
    for inner in reversed(msgs):  # reply first, receipt second
        office_a.store.sync.apply_incoming(inner, T0)
    out = office_a.store.referrals.get(OUT, rid)
    assert out.state == "accepted"
    assert [h["state"] for h in office_a.store.referrals.history(OUT, rid)] == [
        "sent",
        "delivered",
        "accepted",
    ]


def test_withdraw_deletes_at_recipient_and_is_confirmed(office_a: Office, office_b: Office) -> None:
    """A withdrawal erases what B received (also in its case); A sees the confirmation."""
    rid = _refer(office_a, _case_with_consent(office_a, "awo-fue", FIELDS), FIELDS)
    deliver(office_a, office_b)
    case_b = office_b.store.referrals.accept(rid).case_id
    assert case_b is not None
    deliver(office_b, office_a)
    office_a.store.referrals.withdraw(rid, "consent_withdrawn")
    deliver(office_a, office_b)
    incoming = office_b.store.referrals.get(IN, rid)
    assert (incoming.state, incoming.client) == ("withdrawn", None)
    erased = office_b.store.cases.get(case_b)
    assert erased["family_name"] is None
    assert erased["given_name"] is None
    assert "Haddad" not in str(office_b.store.db.execute("SELECT * FROM referrals").fetchall())
    [confirm] = deliver(office_b, office_a)
    assert confirm.type == "referral.status"
    assert office_a.store.referrals.get(OUT, rid).state == "withdrawal_confirmed"


def test_duplicates_are_dropped(office_a: Office, office_b: Office) -> None:
    """Applying the same message twice changes nothing the second time (one receipt, one row)."""
    rid = _refer(office_a, _case_with_consent(office_a, "awo-fue", FIELDS), FIELDS)
    [offer] = open_outbox(office_a, office_b)
    office_b.store.sync.apply_incoming(offer, T0)
    office_b.store.sync.apply_incoming(offer, T0)
    assert office_b.store.sync.inbox_seen(offer.msg_id)
    assert len(office_b.store.referrals.list_referrals(IN)) == 1
    assert [m.type for m in open_outbox(office_b, office_a)] == ["receipt"]
    office_b.store.referrals.accept(rid)
    [_, reply] = open_outbox(office_b, office_a)
    office_a.store.sync.apply_incoming(reply, T0)
    office_a.store.sync.apply_incoming(reply, T0)
    assert [h["event"] for h in office_a.store.referrals.history(OUT, rid)] == [
        "send",
        "receipt",
        "accepted",
    ]


def test_relay_expired_marks_the_referral_expired(office_a: Office) -> None:
    """The hub's expiry notice for an undelivered offer makes the referral expired."""
    rid = _refer(office_a, _case_with_consent(office_a, "awo-fue", FIELDS), FIELDS)
    offer_msg = office_a.store.sync.outbox_pending(10)[0].msg_id
    notice = InnerMessage(
        msg_id="e" * 32,
        sender="hub",
        recipient="caritas-nbg",
        created=T0,
        expires=T0 + 60,
        payload=ExpiryNotice(of_msg_id=offer_msg, recipient="awo-fue", expired=T0),
    )
    office_a.store.sync.apply_incoming(notice, T0)
    assert office_a.store.referrals.get(OUT, rid).state == "expired"


def test_anomalies_are_recorded_not_raised(office_a: Office, office_b: Office) -> None:
    """A reply for an unknown referral or from the wrong office is recorded, not applied."""
    rid = _refer(office_a, _case_with_consent(office_a, "awo-fue", FIELDS), FIELDS)
    for msg_id, sender, referral in (
        ("1" * 32, "awo-fue", "f" * 32),
        ("2" * 32, "diakonie-er", rid),
    ):
        office_a.store.sync.apply_incoming(
            InnerMessage(
                msg_id=msg_id,
                sender=sender,
                recipient="caritas-nbg",
                created=T0,
                expires=T0 + 60,
                payload=ReferralReply(referral_id=referral, decision="accepted"),
            ),
            T0,
        )
    reasons = [r[0] for r in office_a.store.db.execute("SELECT reason FROM refused ORDER BY seq")]
    assert reasons == ["unknown-referral", "sender-mismatch"]
    assert office_a.store.referrals.get(OUT, rid).state == "sent"


def test_outbox_bookkeeping(office_a: Office) -> None:
    """Attempts are counted, rejected messages are kept but not pending, accepted ones leave."""
    case_id = _case_with_consent(office_a, "awo-fue", FIELDS)
    _refer(office_a, case_id, FIELDS)
    _refer(office_a, case_id, FIELDS)
    first, second = office_a.store.sync.outbox_pending(10)
    office_a.store.sync.outbox_attempted([first.msg_id], T0)
    assert office_a.store.sync.outbox_pending(1)[0].attempts == 1
    office_a.store.sync.outbox_rejected(second.msg_id, "unknown recipient", T0)
    assert [m.msg_id for m in office_a.store.sync.outbox_pending(10)] == [first.msg_id]
    office_a.store.sync.outbox_accepted([first.msg_id], T0)
    assert office_a.store.sync.outbox_pending(10) == []
    status = office_a.store.status()
    assert (status["outbox_depth"], status["outbox_rejected"]) == (0, 1)


def test_sync_state_and_enrollment_round_trip(office_a: Office) -> None:
    """Sync state values and the enrollment survive a write and read."""
    office_a.store.sync.set_sync_state("last_sync", str(T0))
    office_a.store.sync.set_sync_state("last_sync", str(T0 + 5))
    assert office_a.store.sync.get_sync_state("last_sync") == str(T0 + 5)
    assert office_a.store.sync.get_sync_state("nope") is None
    state = office_a.store.sync.load_enrollment()
    assert state is not None
    assert state.node_id == "caritas-nbg"
    assert office_a.store.status()["directory_version"] == 1
