"""Erasing a case (node/storage/erasure.py): both offices, real SQLite files.

A refers a client to B, then erases the case. The marker strings of the
client must be in none of A's or B's files afterwards (database and WAL), B
answers with a signed deletion receipt that A keeps, and what B keeps depends
on whether it had accepted the referral and opened its own case.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.domain.referral_states import IN, OUT
from node.errors import ConflictError, Gone, InvalidInput, NotFound
from node.stats.compute import compute
from node.stats.erasure import erase_keeping_statistics
from node.stats.facts import load_facts
from node.stats.periods import parse_period
from node.storage.db import transaction
from node.storage.stats_ledger import StatsLedger, cells_hash
from protocol.erasure import DeletionReceipt
from protocol.errors import BadSignatureError
from protocol.payloads import ErasureReceipt, ReferralErase
from tests.node.conftest import (
    CASE,
    Office,
    consent_for,
    deliver,
    keys_from,
    make_office,
    open_outbox,
)

FIELDS = ["given_name", "family_name", "phone", "topics"]
FAMILY = "Zqxerasurefamily"
PHONE = "+49 170 5550199"
NOTE = "Zqxnotetotherecipient"
DAY = 86400


@pytest.fixture
def offices(tmp_path: Path) -> Iterator[tuple[Office, Office]]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_office("caritas-nbg", db_path=str(tmp_path / "a" / "node.db"))
    b = make_office("awo-fue", db_path=str(tmp_path / "b" / "node.db"))
    yield a, b
    a.store.close()
    b.store.close()


def _files_with(directory: Path, *needles: str) -> list[str]:
    found = []
    for path in sorted(directory.iterdir()):
        data = path.read_bytes()
        found += [f"{path.name}:{n}" for n in needles if n.encode() in data]
    return found


def _refer(a: Office, recipient: str = "awo-fue") -> tuple[str, str]:
    case_id = a.store.cases.create({**CASE, "family_name": FAMILY, "phone": PHONE})
    a.store.consents.record(case_id, consent_for(recipient, [*FIELDS, "note"]))
    ref = a.store.referrals.create(
        {
            "case_id": case_id,
            "recipient": recipient,
            "target_type": "jmd",
            "fields": FIELDS,
            "note": NOTE,
        }
    )
    return case_id, ref.referral_id


def _erase(office: Office, case_id: str, reason: str = "client_request") -> None:
    office.store.erasure.erase_case(case_id, reason, app="test-app")


def test_erasure_before_the_answer_leaves_no_trace_and_a_signed_receipt(
    offices: tuple[Office, Office], tmp_path: Path
) -> None:
    """A erases before B answers: the client's values are in none of the files of
    A or B (WAL included), B's referral is withdrawn, A holds B's signed receipt."""
    a, b = offices
    case_id, rid = _refer(a)
    a.store.cases.add_contact(case_id, {"date": "2026-10-01", "channel": "phone", "minutes": 30})
    deliver(a, b)
    assert _files_with(tmp_path / "b", FAMILY, PHONE, NOTE), "control: B holds the data"
    _erase(a, case_id)
    assert _files_with(tmp_path / "a", FAMILY, PHONE, NOTE) == []
    (erase,) = deliver(a, b)
    assert isinstance(erase.payload, ReferralErase)
    assert erase.payload.reason == "client_request"
    assert _files_with(tmp_path / "b", FAMILY, PHONE, NOTE) == []
    assert b.store.referrals.get(IN, rid).state == "withdrawn"
    answers = [m for m in deliver(b, a) if isinstance(m.payload, ErasureReceipt)]
    assert len(answers) == 1
    (notice,) = a.store.erasure.notices()
    assert notice["receipt"] == {
        "received": notice["receipt"]["received"],
        "erased": sorted([*FIELDS, "note"]),
        "kept": [],
        "flagged": False,
    }
    doc = a.store.erasure.receipt_document(rid)
    receipt = DeletionReceipt.verify(doc, keys_from("awo-fue").public)
    assert (receipt.office, receipt.to, receipt.referral_id) == ("awo-fue", "caritas-nbg", rid)
    with pytest.raises(BadSignatureError):
        DeletionReceipt.verify(doc, keys_from("caritas-nbg").public)
    history = [e["event"] for e in a.store.referrals.history(OUT, rid)]
    assert [e for e in history if e.startswith("erasure")] == [
        "erasure_requested",
        "erasure_confirmed",
    ]
    assert a.store.erasure.counts() == {"waiting": 0, "overdue": 0, "flagged": 0}


def test_an_accepted_referral_flags_the_recipients_own_case(
    offices: tuple[Office, Office], tmp_path: Path
) -> None:
    """B had accepted and opened its own case: the received fields are erased from
    it, the case is kept and flagged, and B's receipt says so."""
    a, b = offices
    case_id, rid = _refer(a)
    deliver(a, b)
    own = b.store.referrals.accept(rid, {"pseudonym": "B-7"}).case_id
    assert own is not None
    b.store.cases.add_contact(own, {"date": "2026-10-02", "channel": "in_person", "minutes": 45})
    deliver(b, a)
    _erase(a, case_id)
    deliver(a, b)
    kept = b.store.cases.get(own)
    assert kept["pseudonym"] == "B-7"
    assert (kept["family_name"], kept["phone"], kept["given_name"]) == (None, None, None)
    assert len(b.store.cases.contacts(own)) == 1, "B's own counselling record stays"
    assert _files_with(tmp_path / "b", FAMILY, PHONE, NOTE) == []
    (request,) = b.store.erasure.requests()
    assert (request["case_id"], request["kept"], request["settled"]) == (own, ["case"], None)
    assert b.store.erasure.counts()["flagged"] == 1
    deliver(b, a)
    (notice,) = a.store.erasure.notices()
    assert notice["receipt"]["kept"] == ["case"]
    assert notice["receipt"]["flagged"] is True
    settled = b.store.erasure.settle(rid)
    assert settled["settlement"] == "case_kept"
    with pytest.raises(ConflictError):
        b.store.erasure.settle(rid)


def test_erasing_the_flagged_case_settles_it(offices: tuple[Office, Office]) -> None:
    a, b = offices
    case_id, rid = _refer(a)
    deliver(a, b)
    own = b.store.referrals.accept(rid).case_id
    assert own is not None
    deliver(b, a)
    _erase(a, case_id)
    deliver(a, b)
    _erase(b, own)
    (request,) = b.store.erasure.requests()
    assert request["settlement"] == "case_erased"
    assert b.store.erasure.counts()["flagged"] == 0


def test_notice_waits_while_the_recipient_is_away_and_is_never_forgotten(
    offices: tuple[Office, Office],
) -> None:
    """Nothing is lost while B is offline: the notice that expired undelivered is
    sealed again; after answer_within_days it is overdue (listed and counted),
    and B's late receipt still settles it."""
    a, b = offices
    case_id, _ = _refer(a)
    deliver(a, b)
    deliver(b, a)
    _erase(a, case_id)
    (first,) = a.store.sync.outbox_pending(10)
    a.clock.advance(15 * DAY)
    (notice,) = a.store.erasure.notices()
    assert notice["overdue"] is True
    assert a.store.erasure.counts() == {"waiting": 1, "overdue": 1, "flagged": 0}
    assert "erasures_overdue" in a.store.health().warnings()
    assert a.store.sync.outbox_expired(first.msg_id, a.clock.t)  # as the worker finds it
    (again,) = a.store.sync.outbox_pending(10)
    assert again.msg_id != first.msg_id
    b.clock.advance(15 * DAY)
    (erase,) = deliver(a, b)
    assert isinstance(erase.payload, ReferralErase)
    deliver(b, a)
    assert a.store.erasure.counts()["waiting"] == 0


def test_every_referral_of_the_case_is_told_in_any_state(offices: tuple[Office, Office]) -> None:
    """A declined referral and one to a third office both get a notice."""
    a, b = offices
    c = make_office("diakonie-er")
    try:
        case_id, rid_b = _refer(a)
        a.store.consents.record(case_id, consent_for("diakonie-er", FIELDS))
        rid_c = a.store.referrals.create(
            {
                "case_id": case_id,
                "recipient": "diakonie-er",
                "target_type": "psychosocial",
                "fields": FIELDS,
            }
        ).referral_id
        deliver(a, b)
        b.store.referrals.decline(rid_b, "no_capacity", note="Zqxdeclinenote")
        deliver(b, a)
        _erase(a, case_id)
        peers = {m.recipient: m.payload for m in open_outbox(a, b) + open_outbox(a, c)}
        assert set(peers) == {"awo-fue", "diakonie-er"}
        assert {p.referral_id for p in peers.values()} == {rid_b, rid_c}  # type: ignore[union-attr]
        assert a.store.referrals.get(OUT, rid_b).reply_note is None
    finally:
        c.store.close()


def test_notice_for_a_referral_never_received_is_answered_and_bars_the_late_offer(
    offices: tuple[Office, Office],
) -> None:
    """The erasure overtakes the offer: B answers "nothing held" and refuses the
    offer when it arrives after all."""
    a, b = offices
    case_id, rid = _refer(a)
    offer = open_outbox(a, b)
    _erase(a, case_id)
    erase = [m for m in open_outbox(a, b) if isinstance(m.payload, ReferralErase)]
    b.store.sync.apply_incoming(erase[0], b.clock.t)
    b.store.sync.apply_incoming(offer[0], b.clock.t)
    assert b.store.referrals.find(IN, rid) is None
    (request,) = b.store.erasure.requests()
    assert (request["erased"], request["kept"]) == ([], [])
    deliver(b, a)
    (notice,) = a.store.erasure.notices()
    assert notice["receipt"]["erased"] == []


def test_bad_input_and_states(offices: tuple[Office, Office]) -> None:
    """Unknown case 404, erased case 410 everywhere, a held case 409 naming the
    reason code, an unknown reason 422; no message holds a client value."""
    a, _ = offices
    with pytest.raises(NotFound):
        _erase(a, "0" * 32)
    case_id, _ = _refer(a)
    with pytest.raises(InvalidInput):
        a.store.erasure.erase_case(case_id, "because", app="t")
    with transaction(a.store.db):
        a.store.db.execute(
            "INSERT INTO retention_holds (case_id, reason, since) VALUES (?, 'legal_claim', 0)",
            (case_id,),
        )
    with pytest.raises(ConflictError) as held:
        _erase(a, case_id)
    assert "legal_claim" in str(held.value)
    a.store.db.execute("DELETE FROM retention_holds")
    _erase(a, case_id)
    with pytest.raises(Gone) as gone:
        _erase(a, case_id)
    with pytest.raises(Gone):
        a.store.cases.get(case_id)
    for exc in (held.value, gone.value):
        assert FAMILY not in str(exc)
        assert PHONE not in str(exc)


def test_a_forged_receipt_is_refused(offices: tuple[Office, Office]) -> None:
    """A receipt signed by another key than the recipient's is not recorded."""
    a, b = offices
    case_id, rid = _refer(a)
    deliver(a, b)
    deliver(b, a)
    _erase(a, case_id)
    deliver(a, b)
    (answer,) = open_outbox(b, a)
    forged = DeletionReceipt(rid, "awo-fue", "caritas-nbg", (), (), False, 1).sign(
        keys_from("diakonie-er")
    )
    inner = answer.__class__(
        msg_id=answer.msg_id,
        sender=answer.sender,
        recipient=answer.recipient,
        created=answer.created,
        expires=answer.expires,
        payload=ErasureReceipt(rid, forged),
    )
    a.store.sync.apply_incoming(inner, a.clock.t)
    (notice,) = a.store.erasure.notices()
    assert notice["receipt"] is None
    refused = a.store.db.execute("SELECT reason FROM refused").fetchall()
    assert refused == [("bad-receipt",)]


def test_erasure_does_not_revise_submitted_statistics(offices: tuple[Office, Office]) -> None:
    """A period submitted before the erasure counts as unchanged after it."""
    a, _ = offices
    case_id, _ = _refer(a)
    a.store.cases.create({**CASE, "pseudonym": "K-2"})
    period = parse_period(a.store.ctx.today()[:4])
    before = cells_hash(period.id, compute(load_facts(a.store.ctx), period))
    a.store.db.execute(
        "INSERT INTO stats_reports (period, revision, cells_hash, cell_count, generated, state,"
        " msg_id, expires, next_attempt) VALUES (?, 1, ?, 1, 0, 'submitted', 'm', 0, 0)",
        (period.id, before),
    )
    erase_keeping_statistics(
        a.store.ctx, lambda: a.store.erasure.erase_case(case_id, "client_request", app="t")
    )
    after = cells_hash(period.id, compute(load_facts(a.store.ctx), period))
    assert after != before, "control: the erased case was counted"
    latest = StatsLedger(a.store.ctx).latest(period.id)
    assert latest is not None
    assert latest.matches(after)


def test_kept_payloads_lose_free_text(offices: tuple[Office, Office]) -> None:
    """A kept status payload with a free-text reason keeps no trace of it."""
    a, b = offices
    _case_id, rid = _refer(a)
    deliver(a, b)
    own = b.store.referrals.accept(rid).case_id
    assert own is not None
    b.store.referrals.report(rid, "completed_unsuccessful", None, "Zqxfreetextreason")
    deliver(b, a)
    _erase(b, own)
    payloads = [r[0] for r in b.store.db.execute("SELECT payload FROM sent_log").fetchall()]
    assert not any("Zqxfreetextreason" in (p or "") for p in payloads)
    assert any(json.loads(p).get("reason") for p in payloads if p)


def test_only_the_periods_the_case_counts_in_are_guarded(offices: tuple[Office, Office]) -> None:
    """With the erased case named, a submitted period it never counted in is left
    alone (not recomputed, no erasure hash), and one it counted in is guarded."""
    a, _ = offices
    case_id, _ = _refer(a)
    old_case = a.store.cases.create({**CASE, "pseudonym": "K-old", "opened": "2025-02-01"})
    a.store.cases.close(old_case, "moved", "2025-03-01")
    facts = load_facts(a.store.ctx)
    rows = []
    for period_id in (a.store.ctx.today()[:4], "2025-02"):
        period = parse_period(period_id)
        rows.append((period.id, cells_hash(period.id, compute(facts, period))))
    for period_id, digest in rows:
        a.store.db.execute(
            "INSERT INTO stats_reports (period, revision, cells_hash, cell_count, generated,"
            " state, msg_id, expires, next_attempt) VALUES (?, 1, ?, 1, 0, 'submitted', 'm', 0, 0)",
            (period_id, digest),
        )
    erase_keeping_statistics(
        a.store.ctx,
        lambda: a.store.erasure.erase_case(case_id, "client_request", app="t"),
        case_ids=[case_id],
    )
    ledger = StatsLedger(a.store.ctx)
    this_year, old = ledger.latest(rows[0][0]), ledger.latest("2025-02")
    assert this_year is not None
    assert old is not None
    assert this_year.erasure_hash is not None
    assert old.erasure_hash is None
    after = cells_hash(rows[0][0], compute(load_facts(a.store.ctx), parse_period(rows[0][0])))
    assert this_year.matches(after)
