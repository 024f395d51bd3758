"""A sent message that expires undelivered is sealed again (withdraw, reply, status), never lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from node.api.views import view_of
from node.domain.referral_states import IN, OUT, Event
from protocol.envelope import InnerMessage
from protocol.payloads import ExpiryNotice, ReferralReply, ReferralStatus, ReferralWithdraw
from tests.node.conftest import (
    CASE,
    FakeClock,
    Office,
    consent_for,
    deliver,
    make_office,
    open_outbox,
    signed_directory,
)

FIELDS = ["given_name", "family_name"]
DAY = 86400
TTL = 14 * DAY  # message_ttl of make_office


@pytest.fixture
def pair() -> Iterator[tuple[Office, Office]]:
    """Two offices sharing one fake clock (the injected clock of both stores)."""
    clock = FakeClock()
    a, b = make_office("caritas-nbg", clock=clock), make_office("awo-fue", clock=clock)
    yield a, b
    a.store.close()
    b.store.close()


def _offered(a: Office, b: Office) -> str:
    """A referral from a to b, delivered to b (receipt back at a)."""
    case_id = a.store.cases.create(dict(CASE))
    a.store.consents.record(case_id, consent_for(b.node_id, FIELDS))
    rid = a.store.referrals.create(
        {"case_id": case_id, "recipient": b.node_id, "target_type": "mbe", "fields": FIELDS}
    ).referral_id
    deliver(a, b)
    deliver(b, a)
    return rid


def _pending(office: Office) -> list[tuple[str, str]]:
    return [(m.msg_id, m.recipient) for m in office.store.sync.outbox_pending(100)]


def _status(office: Office, msg_id: str) -> tuple[str, str | None]:
    row = office.store.db.execute(
        "SELECT status, resent_as FROM sent_log WHERE msg_id = ?", (msg_id,)
    ).fetchone()
    return row[0], row[1]


def _notice(office: Office, of_msg_id: str, recipient: str) -> None:
    notice = InnerMessage(
        msg_id=f"{office.clock.t:032x}"[-32:],
        sender="hub",
        recipient=office.node_id,
        created=office.clock.t,
        expires=office.clock.t + 60,
        payload=ExpiryNotice(of_msg_id=of_msg_id, recipient=recipient, expired=office.clock.t),
    )
    office.store.sync.apply_incoming(notice, office.clock.t)


def test_a_withdrawal_expired_in_the_outbox_is_sealed_again_and_arrives(
    pair: tuple[Office, Office],
) -> None:
    """Hub unreachable past message_ttl: the withdrawal is re-sealed (new id, new expiry)."""
    a, b = pair
    rid = _offered(a, b)
    a.store.referrals.withdraw(rid, "consent_withdrawn")
    [(old, _)] = _pending(a)
    a.clock.advance(TTL + 1)
    assert a.store.sync.outbox_expired(old, a.clock.t) is True
    [new] = a.store.sync.outbox_pending(100)
    assert new.msg_id != old
    assert new.expires == a.clock.t + TTL
    assert _status(a, old) == ("resent", new.msg_id)
    ref = a.store.referrals.get(OUT, rid)
    assert ref.state == "withdrawn"
    assert [h["event"] for h in a.store.referrals.history(OUT, rid)][-1] == Event.RESEND
    assert view_of(a.store, ref)["delivery"] == {
        "type": ReferralWithdraw.TYPE,
        "status": "queued",
        "resent": 1,
    }
    assert a.store.health().messages_resent == 1
    assert a.store.status()["messages_resent"] == 1
    # The recipient deletes and confirms; the sender records the confirmation.
    [inner] = deliver(a, b)
    assert inner.payload == ReferralWithdraw(referral_id=rid, reason="consent_withdrawn")
    assert b.store.referrals.get(IN, rid).state == "withdrawn"
    assert b.store.referrals.get(IN, rid).client is None
    deliver(b, a)
    assert a.store.referrals.get(OUT, rid).state == "withdrawal_confirmed"


def test_a_reply_the_hub_expired_is_sealed_again(pair: tuple[Office, Office]) -> None:
    """relay.expired for a reply: the receiving office seals the same decision again."""
    a, b = pair
    rid = _offered(a, b)
    b.store.referrals.decline(rid, "no_capacity", note="Bitte in zwei Monaten erneut")
    [(reply_id, _)] = _pending(b)
    b.store.sync.outbox_accepted([reply_id], b.clock.t)  # the hub took it ...
    b.clock.advance(TTL + 1)
    _notice(b, reply_id, a.node_id)  # ... and a never fetched it in time
    assert _status(b, reply_id)[0] == "resent"
    [inner] = deliver(b, a)
    assert inner.msg_id != reply_id
    assert inner.payload == ReferralReply(
        referral_id=rid,
        decision="declined",
        reason="no_capacity",
        note="Bitte in zwei Monaten erneut",
    )
    out = a.store.referrals.get(OUT, rid)
    assert (out.state, out.reply_note) == ("declined", "Bitte in zwei Monaten erneut")


def test_a_withdrawal_confirmation_the_hub_expired_is_sealed_again(
    pair: tuple[Office, Office],
) -> None:
    """relay.expired for withdrawal_confirmed: sent again although the referral is withdrawn."""
    a, b = pair
    rid = _offered(a, b)
    a.store.referrals.withdraw(rid, "consent_withdrawn")
    deliver(a, b)
    [(confirm_id, _)] = _pending(b)
    b.store.sync.outbox_accepted([confirm_id], b.clock.t)
    _notice(b, confirm_id, a.node_id)
    [inner] = deliver(b, a)
    assert isinstance(inner.payload, ReferralStatus)
    assert inner.payload.outcome == "withdrawal_confirmed"
    assert a.store.referrals.get(OUT, rid).state == "withdrawal_confirmed"


def test_a_status_report_the_hub_expired_is_sealed_again(pair: tuple[Office, Office]) -> None:
    """relay.expired for a status (first appointment, with its date): sent again unchanged."""
    a, b = pair
    rid = _offered(a, b)
    b.store.referrals.accept(rid)
    deliver(b, a)
    b.store.referrals.report(rid, "first_appointment", "2026-09-01", None)
    [(status_id, _)] = _pending(b)
    b.store.sync.outbox_accepted([status_id], b.clock.t)
    _notice(b, status_id, a.node_id)
    [inner] = deliver(b, a)
    assert inner.payload == ReferralStatus(
        referral_id=rid, outcome="first_appointment", date="2026-09-01"
    )
    assert a.store.referrals.get(OUT, rid).state == "first_appointment"


def test_an_offer_that_expires_in_the_outbox_expires_the_referral(
    pair: tuple[Office, Office],
) -> None:
    """Offers are not re-sent: the referral becomes expired, as with the hub's notice."""
    a, b = pair
    case_id = a.store.cases.create(dict(CASE))
    a.store.consents.record(case_id, consent_for(b.node_id, FIELDS))
    rid = a.store.referrals.create(
        {"case_id": case_id, "recipient": b.node_id, "target_type": "mbe", "fields": FIELDS}
    ).referral_id
    [(offer, _)] = _pending(a)
    a.clock.advance(TTL + 1)
    assert a.store.sync.outbox_expired(offer, a.clock.t) is True
    assert _pending(a) == []
    ref = a.store.referrals.get(OUT, rid)
    assert ref.state == "expired"
    assert view_of(a.store, ref)["delivery"]["status"] == "expired"
    assert a.store.health().messages_resent == 0


def test_an_answer_to_a_withdrawn_referral_is_not_sent_again(
    pair: tuple[Office, Office],
) -> None:
    """The sender withdrew meanwhile: the expired acceptance is moot and retired."""
    a, b = pair
    rid = _offered(a, b)
    b.store.referrals.accept(rid)
    [(reply_id, _)] = _pending(b)
    b.store.sync.outbox_accepted([reply_id], b.clock.t)
    a.store.referrals.withdraw(rid, "consent_withdrawn")
    deliver(a, b)
    b.store.sync.outbox_accepted([m for m, _ in _pending(b)], b.clock.t)
    _notice(b, reply_id, a.node_id)
    assert _status(b, reply_id) == ("expired", None)
    assert _pending(b) == []


def test_without_a_usable_directory_the_expired_message_waits(
    pair: tuple[Office, Office],
) -> None:
    """The directory expired too (long outage): nothing changes until it is refreshed."""
    a, b = pair
    rid = _offered(a, b)
    a.store.referrals.withdraw(rid, "consent_withdrawn")
    [(old, _)] = _pending(a)
    a.clock.advance(31 * DAY)  # past the directory's expiry as well
    assert a.store.sync.outbox_expired(old, a.clock.t) is False
    assert _pending(a) == [(old, b.node_id)]
    assert _status(a, old) == ("queued", None)
    a.store.sync.store_directory(2, signed_directory(2, expires=a.clock.t + 30 * DAY), None)
    assert a.store.sync.outbox_expired(old, a.clock.t) is True
    assert _status(a, old)[0] == "resent"


def test_a_withdrawal_to_a_revoked_office_fails_visibly_and_is_retried(
    pair: tuple[Office, Office],
) -> None:
    """Cannot be re-sealed (recipient revoked): failed, a warning, and housekeeping retries it."""
    a, b = pair
    rid = _offered(a, b)
    a.store.referrals.withdraw(rid, "consent_withdrawn")
    [(old, _)] = _pending(a)
    a.store.sync.outbox_accepted([old], a.clock.t)
    a.store.sync.store_directory(2, signed_directory(2, revoked=frozenset({b.node_id})), None)
    _notice(a, old, b.node_id)
    assert _status(a, old) == ("failed", None)
    health = a.store.health()
    assert (health.delivery_failed, health.withdrawals_pending) == (1, 1)
    assert "delivery_failed" in health.warnings()
    assert view_of(a.store, a.store.referrals.get(OUT, rid))["delivery"]["status"] == ("failed")
    a.store.sync.store_directory(3, signed_directory(3), None)
    assert a.store.lifecycle.run(14).withdrawals_sent == (rid,)
    [(new, _)] = _pending(a)
    assert _status(a, old) == ("resent", new)
    health = a.store.health()
    assert (health.delivery_failed, health.withdrawals_pending) == (0, 0)
    assert [m.payload for m in open_outbox(a, b)] == [
        ReferralWithdraw(referral_id=rid, reason="consent_withdrawn")
    ]


def test_a_second_notice_for_the_same_message_changes_nothing(
    pair: tuple[Office, Office],
) -> None:
    """Told twice (local expiry, then the hub's notice): only one re-send."""
    a, b = pair
    rid = _offered(a, b)
    a.store.referrals.withdraw(rid, "other")
    [(old, _)] = _pending(a)
    a.clock.advance(TTL + 1)
    assert a.store.sync.outbox_expired(old, a.clock.t)
    _notice(a, old, b.node_id)
    assert len(_pending(a)) == 1
    assert a.store.health().messages_resent == 1


def test_progress_that_overtakes_a_resent_acceptance_implies_it(
    pair: tuple[Office, Office],
) -> None:
    """Acceptance expired and re-sent after the first appointment: the sender still ends there."""
    a, b = pair
    rid = _offered(a, b)
    b.store.referrals.accept(rid)
    [(reply_id, _)] = _pending(b)
    b.store.sync.outbox_accepted([reply_id], b.clock.t)
    b.store.referrals.report(rid, "first_appointment", "2026-09-02", None)
    deliver(b, a)  # the status arrives, the acceptance did not
    assert [h["event"] for h in a.store.referrals.history(OUT, rid)] == [
        "send",
        "receipt",
        "accepted",
        "first_appointment",
    ]
    _notice(b, reply_id, a.node_id)
    deliver(b, a)  # the re-sent acceptance: stale now, recorded, state kept
    assert a.store.referrals.get(OUT, rid).state == "first_appointment"
    refused = a.store.db.execute("SELECT reason FROM refused").fetchall()
    assert refused == [("illegal-transition: first_appointment by accepted",)]
