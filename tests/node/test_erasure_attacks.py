"""Erasure attacked from outside (issue 9 item 2): hostile or confused peers,
crashes in the middle, remnants of the client's values, statistics, the API.

Each test plays what an outside tester would try against node/storage/erasure.py
and its wiring; the offices are real SQLite files (tests/node/conftest.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api.keys import STORE
from node.domain.referral_states import IN, OUT
from node.stats.erasure import erase_keeping_statistics
from node.stats.service import UNCHANGED
from node.stats.settings import StatsSettings
from node.storage.store import NodeStore
from protocol.erasure import DeletionReceipt
from protocol.errors import MalformedError
from protocol.payloads import MAX_RECEIPT_DOC, ErasureReceipt, ReferralErase, ReferralOffer
from tests.node.conftest import (
    CASE,
    ApiNode,
    FakeClock,
    Office,
    consent_for,
    deliver,
    make_office,
    open_outbox,
    signed_directory,
)
from tests.node.test_erasure_api import case_with_referral
from tests.node_stats.conftest import FakeHub, add_case, make_service, set_today

FIELDS = ["given_name", "family_name", "phone", "topics"]
FAMILY = "Zqxattackfamily"
PHONE = "+49 170 5550123"
NOTE = "Zqxattacknote"
PURPOSE = "Zqxattackpurpose"
DECLINE = "Zqxattackdecline"
FREETEXT = "Zqxattackfreetext"
MARKERS = (FAMILY, PHONE, NOTE, PURPOSE, DECLINE, FREETEXT)
DAY = 86400
API = "/api/v1"


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[tuple[Office, Office, Office]]:
    offices = []
    for name, node_id in (("a", "caritas-nbg"), ("b", "awo-fue"), ("c", "diakonie-er")):
        (tmp_path / name).mkdir()
        offices.append(make_office(node_id, db_path=str(tmp_path / name / "node.db")))
    a, b, c = offices
    yield a, b, c
    for o in offices:
        o.store.close()


def _refer(a: Office, recipient: str = "awo-fue", target: str = "jmd") -> tuple[str, str]:
    case_id = a.store.cases.create({**CASE, "family_name": FAMILY, "phone": PHONE})
    a.store.consents.record(
        case_id, consent_for(recipient, [*FIELDS, "note"], purpose=f"Weiterleitung {PURPOSE}")
    )
    ref = a.store.referrals.create(
        {
            "case_id": case_id,
            "recipient": recipient,
            "target_type": target,
            "fields": FIELDS,
            "note": NOTE,
        }
    )
    return case_id, ref.referral_id


def _erase(office: Office, case_id: str, reason: str = "client_request") -> None:
    office.store.erasure.erase_case(case_id, reason, app="test-app")


def _refused(office: Office) -> list[str]:
    return [r[0] for r in office.store.db.execute("SELECT reason FROM refused ORDER BY seq")]


def _types(msgs: list[Any]) -> list[str]:
    return [m.type for m in msgs]


def _table_hits(office: Office, *needles: str) -> list[str]:
    """Every table of the office's database, as text, searched for the needles."""
    hits = []
    tables = [
        r[0]
        for r in office.store.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    for table in tables:
        for row in office.store.db.execute(f"SELECT * FROM {table}"):  # noqa: S608 -- table names
            text = " ".join(
                v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row
            )
            hits += [f"{table}:{n}" for n in needles if n in text]
    return sorted(set(hits))


def _file_hits(directory: Path, *needles: str) -> list[str]:
    return [
        f"{p.name}:{n}"
        for p in sorted(directory.iterdir())
        for n in needles
        if n.encode() in p.read_bytes()
    ]


# ------------------------------------------------------------ confused peers


def test_an_erase_for_an_outgoing_referral_from_its_recipient_is_refused(
    trio: tuple[Office, Office, Office],
) -> None:
    """B (the recipient of A's referral) sends A a referral.erase for that very id:
    A is the referral's sender, not its recipient, so there is nothing to answer.
    Before: A recorded an erasure request and signed a receipt for its own referral."""
    a, b, _ = trio
    _case_id, rid = _refer(a)
    deliver(a, b)
    deliver(b, a)
    b.store.network.enqueue(a.node_id, ReferralErase(rid, "client_request"), rid)
    deliver(b, a)
    assert a.store.erasure.requests() == []
    assert _refused(a) == ["sender-mismatch"]
    assert not [m for m in open_outbox(a, b) if isinstance(m.payload, ErasureReceipt)]
    assert a.store.referrals.get(OUT, rid).note == NOTE


def test_an_erase_for_an_incoming_id_that_is_also_outgoing_clears_only_the_incoming_one(
    trio: tuple[Office, Office, Office],
) -> None:
    """Referral ids are unique only per direction. B offers A a referral under the
    id of A's own outgoing referral to B, then erases it: only the incoming one
    loses its values. Before: A's outgoing referral lost its note too."""
    a, b, _ = trio
    _case_id, rid = _refer(a)
    (offer,) = deliver(a, b)
    assert isinstance(offer.payload, ReferralOffer)
    mirrored = ReferralOffer(
        referral_id=rid,
        target_type="mbe",
        consent=offer.payload.consent,
        client={"given_name": "Zqxmirror"},
    )
    b.store.network.enqueue(a.node_id, mirrored, rid)
    deliver(b, a)
    assert a.store.referrals.get(IN, rid).client == {"given_name": "Zqxmirror"}
    b.store.network.enqueue(a.node_id, ReferralErase(rid, "client_request"), rid)
    deliver(b, a)
    assert a.store.referrals.get(IN, rid).client is None
    assert a.store.referrals.get(OUT, rid).note == NOTE


def test_a_third_office_erasing_first_does_not_bar_the_real_offer(
    trio: tuple[Office, Office, Office],
) -> None:
    """C (not the sender) sends B a referral.erase for A's referral before A's offer
    arrives. The offer from A must still be taken, and A's own erasure later
    answered. Before: the offer was refused as "erased-before-arrival" and A's
    notice refused as "sender-mismatch", so A never got a receipt."""
    a, b, c = trio
    case_id, rid = _refer(a)
    (offer,) = open_outbox(a, b)
    c.store.network.enqueue(b.node_id, ReferralErase(rid, "other"), rid)
    deliver(c, b)
    b.store.sync.apply_incoming(offer, b.clock.t)
    assert b.store.referrals.get(IN, rid).peer == a.node_id
    a.store.sync.outbox_accepted([offer.msg_id], a.clock.t)
    _erase(a, case_id)
    deliver(a, b)
    assert b.store.referrals.get(IN, rid).client is None
    (request,) = b.store.erasure.requests()
    assert request["peer"] == a.node_id
    assert [m for m in deliver(b, a) if isinstance(m.payload, ErasureReceipt)]
    (notice,) = a.store.erasure.notices()
    assert notice["receipt"] is not None
    assert sorted(notice["receipt"]["erased"]) == sorted([*FIELDS, "note"])


def test_a_repeated_notice_is_answered_again_and_nothing_is_duplicated(
    trio: tuple[Office, Office, Office],
) -> None:
    """The same notice sealed twice (new message ids) is answered twice; B records
    one request and one history event, A keeps the first receipt."""
    a, b, _ = trio
    case_id, rid = _refer(a)
    deliver(a, b)
    deliver(b, a)
    _erase(a, case_id)
    a.store.network.enqueue(b.node_id, ReferralErase(rid, "client_request"), rid)
    notices = deliver(a, b)
    assert _types(notices) == ["referral.erase", "referral.erase"]
    assert len(b.store.erasure.requests()) == 1
    events = [e["event"] for e in b.store.referrals.history(IN, rid)]
    assert events.count("erasure_requested") == 1
    answers = [m for m in deliver(b, a) if isinstance(m.payload, ErasureReceipt)]
    assert len(answers) == 2
    assert _refused(a) == []
    events = [e["event"] for e in a.store.referrals.history(OUT, rid)]
    assert events.count("erasure_confirmed") == 1


def test_receipts_from_the_wrong_office_or_for_the_wrong_referral_are_refused(
    trio: tuple[Office, Office, Office],
) -> None:
    """A receipt from a third office, one about another referral, one signed for
    another office and garbage bytes are all refused; the real one counts."""
    a, b, c = trio
    case_id, rid = _refer(a)
    deliver(a, b)
    deliver(b, a)
    _erase(a, case_id)
    deliver(a, b)
    other = "f" * 32
    docs = [
        (c, DeletionReceipt(rid, c.node_id, a.node_id, (), (), False, 1).sign(c.keys)),
        (b, DeletionReceipt(other, b.node_id, a.node_id, (), (), False, 1).sign(b.keys)),
    ]
    for sender, doc in docs:
        sender.store.network.enqueue(a.node_id, ErasureReceipt(rid, doc), rid)
    to_c = DeletionReceipt(rid, b.node_id, c.node_id, (), (), False, 1).sign(b.keys)
    b.store.network.enqueue(a.node_id, ErasureReceipt(rid, to_c), rid)
    b.store.network.enqueue(a.node_id, ErasureReceipt(rid, b"\x00garbage" * 50), rid)
    deliver(c, a)
    forged = [m for m in open_outbox(b, a) if isinstance(m.payload, ErasureReceipt)][1:]
    for inner in forged:
        a.store.sync.apply_incoming(inner, a.clock.t)
    assert _refused(a) == ["sender-mismatch", "bad-receipt", "bad-receipt", "bad-receipt"]
    assert a.store.erasure.notices()[0]["receipt"] is None
    deliver(b, a)  # the real receipt was queued first
    assert a.store.erasure.notices()[0]["receipt"] is not None


def test_an_oversized_receipt_document_is_refused_when_decoded() -> None:
    """A `doc` above MAX_RECEIPT_DOC never reaches the store: the payload does not
    decode (the sync worker records such a message as refused)."""
    big = {"referral": "a" * 32, "doc": b"x" * (MAX_RECEIPT_DOC + 1)}
    with pytest.raises(MalformedError):
        ErasureReceipt.from_map(big)
    assert ErasureReceipt.from_map(big | {"doc": b"x" * MAX_RECEIPT_DOC}).document


# ------------------------------------------------------------ crash consistency


def test_a_crash_while_sealing_the_second_notice_leaves_everything_as_it_was(
    trio: tuple[Office, Office, Office], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = trio
    case_id, rid_b = _refer(a)
    a.store.consents.record(case_id, consent_for(c.node_id, FIELDS))
    a.store.referrals.create(
        {
            "case_id": case_id,
            "recipient": c.node_id,
            "target_type": "psychosocial",
            "fields": FIELDS,
        }
    )
    deliver(a, b)
    deliver(a, c)
    enqueue = a.store.network.enqueue
    calls = []

    def failing(recipient: str, payload: Any, referral_id: str | None) -> str:
        calls.append(recipient)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return enqueue(recipient, payload, referral_id)

    monkeypatch.setattr(a.store.network, "enqueue", failing)
    outbox_before = len(a.store.sync.outbox_pending(100))
    with pytest.raises(RuntimeError):
        erase_keeping_statistics(a.store.ctx, lambda: _erase(a, case_id))
    monkeypatch.undo()
    assert a.store.cases.get(case_id)["family_name"] == FAMILY
    assert a.store.referrals.get(OUT, rid_b).note == NOTE
    for table in ("erased_cases", "erasure_notices"):
        assert a.store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,)  # noqa: S608
    audit = a.store.db.execute("SELECT COUNT(*) FROM audit WHERE action = 'case.erase'")
    assert audit.fetchone() == (0,)
    assert len(a.store.sync.outbox_pending(100)) == outbox_before
    _erase(a, case_id)  # and it works the second time
    assert len(a.store.erasure.notices()) == 2


def test_a_notice_that_cannot_be_sealed_now_is_sealed_by_housekeeping(
    trio: tuple[Office, Office, Office],
) -> None:
    """B left the directory when A erased: the notice is kept unsealed and sealed
    by the next round once B is back; an expired directory likewise."""
    a, b, _ = trio
    case_id, rid = _refer(a)
    deliver(a, b)
    deliver(b, a)
    a.store.sync.store_directory(2, signed_directory(2, revoked=frozenset({b.node_id})), None)
    _erase(a, case_id)
    (notice,) = a.store.erasure.notices()
    assert notice["sealed"] is False
    assert a.store.erasure.send_pending() == []
    a.store.sync.store_directory(3, signed_directory(3), None)
    assert a.store.erasure.send_pending() == [rid]
    assert a.store.erasure.send_pending() == []
    (erase,) = deliver(a, b)
    assert isinstance(erase.payload, ReferralErase)


def test_a_resent_notice_that_fails_is_sealed_again_and_replaces_the_failed_message(
    trio: tuple[Office, Office, Office],
) -> None:
    """The notice expires undelivered and is sealed again; that one expires too
    while B is out of the directory, so it cannot be sealed again ('failed').
    Once B is back, housekeeping must seal it, the failed message is replaced
    (no lasting delivery_failed warning) and the listing follows the live message.
    Before: erasure_notices kept pointing at the first message ('resent'), so the
    failed re-send was never retried and the listing said 'resent' for ever."""
    a, b, _ = trio
    case_id, rid = _refer(a)
    deliver(a, b)
    deliver(b, a)
    _erase(a, case_id)
    (first,) = a.store.sync.outbox_pending(10)
    a.clock.advance(15 * DAY)
    a.store.sync.store_directory(2, signed_directory(2, expires=a.clock.t + 60 * DAY), None)
    assert a.store.sync.outbox_expired(first.msg_id, a.clock.t)
    (second,) = a.store.sync.outbox_pending(10)
    assert a.store.erasure.notices()[0]["delivery"] == "queued"
    a.clock.advance(15 * DAY)
    revoked = signed_directory(3, expires=a.clock.t + 60 * DAY, revoked=frozenset({b.node_id}))
    a.store.sync.store_directory(3, revoked, None)
    assert a.store.sync.outbox_expired(second.msg_id, a.clock.t)
    assert a.store.sync.outbox_pending(10) == []
    assert a.store.erasure.notices()[0]["delivery"] == "failed"
    assert a.store.erasure.send_pending() == []
    a.store.sync.store_directory(4, signed_directory(4, expires=a.clock.t + 60 * DAY), None)
    assert a.store.erasure.send_pending() == [rid]
    assert "delivery_failed" not in a.store.health().warnings()
    (notice,) = a.store.erasure.notices()
    assert (notice["sealed"], notice["delivery"]) == (True, "queued")
    b.clock.t = a.clock.t
    b.store.sync.store_directory(4, signed_directory(4, expires=b.clock.t + 60 * DAY), None)
    (erase,) = deliver(a, b)
    assert isinstance(erase.payload, ReferralErase)
    deliver(b, a)
    assert a.store.erasure.counts()["waiting"] == 0


def test_a_receipt_that_expired_undelivered_is_sealed_again(
    trio: tuple[Office, Office, Office],
) -> None:
    a, b, _ = trio
    case_id, _rid = _refer(a)
    deliver(a, b)
    deliver(b, a)
    _erase(a, case_id)
    deliver(a, b)
    (answer,) = b.store.sync.outbox_pending(10)
    b.clock.advance(15 * DAY)
    assert b.store.sync.outbox_expired(answer.msg_id, b.clock.t)
    (again,) = b.store.sync.outbox_pending(10)
    assert again.msg_id != answer.msg_id
    a.clock.t = b.clock.t
    (receipt,) = deliver(b, a)
    assert isinstance(receipt.payload, ErasureReceipt)
    assert a.store.erasure.counts()["waiting"] == 0


def test_an_erased_cases_open_referral_is_not_expired_into_a_withdrawal_later(
    trio: tuple[Office, Office, Office],
) -> None:
    """B received the offer and answered the notice; two weeks later A's housekeeping
    must not expire the erased case's referral into a referral.withdraw, which B
    (its referral withdrawn by the notice) can only refuse. Before: it did."""
    a, b, _ = trio
    case_id, rid = _refer(a)
    deliver(a, b)
    deliver(b, a)
    assert a.store.referrals.get(OUT, rid).state == "delivered"
    _erase(a, case_id)
    deliver(a, b)
    deliver(b, a)
    a.clock.advance(15 * DAY)
    b.clock.t = a.clock.t
    done = a.store.lifecycle.run(14)
    assert done.expired_out == ()
    assert open_outbox(a, b) == []
    assert _refused(b) == []


# -------------------------------------------------------------- data remnants


def test_an_offer_still_in_the_outbox_is_not_uploaded_after_the_erasure(
    trio: tuple[Office, Office, Office],
) -> None:
    """The case is erased before the hub took its offer: the client's data must not
    leave the office any more. The offer is dropped from the outbox (its delivery
    'expired', the referral expired as an undelivered offer), the notice still
    goes and B answers "nothing held". Before: the offer was uploaded first."""
    a, b, _ = trio
    case_id, rid = _refer(a)
    _erase(a, case_id)
    msgs = open_outbox(a, b)
    assert _types(msgs) == ["referral.erase"]
    status = a.store.db.execute(
        "SELECT status FROM sent_log WHERE type = 'referral.offer' AND referral_id = ?", (rid,)
    ).fetchall()
    assert status == [("expired",)]
    assert a.store.referrals.get(OUT, rid).state == "expired"
    deliver(a, b)
    assert b.store.referrals.find(IN, rid) is None
    deliver(b, a)
    (notice,) = a.store.erasure.notices()
    assert notice["receipt"]["erased"] == []
    a.clock.advance(15 * DAY)
    a.store.lifecycle.run(14)
    assert open_outbox(a, b) == [], "no withdrawal follows for the dropped offer"


def test_no_client_value_remains_in_any_table_or_file_of_any_office(
    trio: tuple[Office, Office, Office], tmp_path: Path
) -> None:
    """A refers the client to B (declined with a note) and to C (accepted, then an
    unsuccessful completion with a free-text reason), and erases the case. No
    marker remains in any table or database file of A, B or C (the consent's
    free-text purpose is never sent); C keeps its own case, flagged."""
    a, b, c = trio
    case_id, rid_b = _refer(a)
    a.store.consents.record(
        case_id, consent_for(c.node_id, [*FIELDS, "note"], purpose=f"Zweck {PURPOSE}")
    )
    rid_c = a.store.referrals.create(
        {
            "case_id": case_id,
            "recipient": c.node_id,
            "target_type": "psychosocial",
            "fields": FIELDS,
            "note": NOTE,
        }
    ).referral_id
    deliver(a, b)
    deliver(a, c)
    b.store.referrals.decline(rid_b, "no_capacity", note=f"Leider {DECLINE}")
    own = c.store.referrals.accept(rid_c).case_id
    assert own is not None
    c.store.referrals.report(rid_c, "completed_unsuccessful", None, f"Grund {FREETEXT}")
    deliver(b, a)
    deliver(c, a)
    for office in (a, b, c):
        assert _table_hits(office, *MARKERS), f"control: {office.node_id} holds markers"
    _erase(a, case_id)
    deliver(a, b)
    deliver(a, c)
    deliver(b, a)
    deliver(c, a)
    for office in (a, b, c):
        assert _table_hits(office, *MARKERS) == [], office.node_id
    for name in ("a", "b", "c"):
        assert _file_hits(tmp_path / name, *MARKERS) == [], name
    assert c.store.cases.get(own)["family_name"] is None
    assert a.store.erasure.counts() == {"waiting": 0, "overdue": 0, "flagged": 0}
    assert c.store.erasure.counts()["flagged"] == 1


# ---------------------------------------------------------------- statistics


def _stats_office(tmp_path: Path) -> Office:
    (tmp_path / "s").mkdir()
    office = make_office("caritas-nbg", db_path=str(tmp_path / "s" / "node.db"))
    set_today(office, "2027-01-20")
    office.store.sync.store_directory(
        2, signed_directory(2, expires=office.clock.t + 30 * DAY), None
    )
    return office


def _counted_cases(office: Office) -> list[str]:
    ids = []
    for n in range(3):
        ids.append(
            add_case(
                office,
                opened=f"2026-10-0{n + 1}",
                contacts=((f"2026-10-1{n}", "phone"),),
                gender="female",
                birth_year=1990,
                entry_month="2020-01",
            )
        )
    return ids


def _erase_counted(office: Office, case_id: str) -> None:
    erase_keeping_statistics(office.store.ctx, lambda: _erase(office, case_id))


async def test_an_erasure_while_a_revision_is_pending_sends_no_second_revision(
    tmp_path: Path,
) -> None:
    """Revision 1 is sealed but waits for an unreachable hub when a counted case is
    erased. Once the hub is back, revision 1 goes out and nothing more: a
    revision 2 would differ from it by the erased client alone. Before: the
    scheduler sent revision 2 right after revision 1."""
    office = _stats_office(tmp_path)
    try:
        ids = _counted_cases(office)
        hub = FakeHub(clock=office.clock)
        service = make_service(office, hub, StatsSettings(periods=("quarter",)))
        hub.down = True
        await service.submit("2026-Q4")
        assert service.ledger.latest("2026-Q4").state == "pending"  # type: ignore[union-attr]
        _erase_counted(office, ids[0])
        hub.down = False
        office.clock.advance(3600)
        await service.run_due()
        await service.run_due()
        assert [(r.period, r.revision) for r in hub.received if r.period == "2026-Q4"] == [
            ("2026-Q4", 1)
        ]
    finally:
        office.store.close()


async def test_erasures_in_a_submitted_period_send_nothing_and_a_real_change_still_does(
    tmp_path: Path,
) -> None:
    office = _stats_office(tmp_path)
    try:
        ids = _counted_cases(office)
        hub = FakeHub(clock=office.clock)
        service = make_service(office, hub, StatsSettings(periods=("quarter",)))
        assert (await service.submit("2026-Q4")).revision == 1
        _erase_counted(office, ids[0])
        assert [o for o in await service.run_due() if o.period == "2026-Q4"] == []
        _erase_counted(office, ids[1])
        assert [o for o in await service.run_due() if o.period == "2026-Q4"] == []
        assert (await service.submit("2026-Q4")).state == UNCHANGED
        add_case(office, opened="2026-11-03", gender="male", birth_year=1985, entry_month="2015-05")
        sent = [o for o in await service.run_due() if o.period == "2026-Q4"]
        assert [(o.period, o.revision) for o in sent] == [("2026-Q4", 2)]
    finally:
        office.store.close()


# ----------------------------------------------------------------------- API

Client = TestClient[web.Request, web.Application]


async def _answer(resp: Any, status: int) -> Any:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    return body


async def _api_case(client: Client, auth: dict[str, str]) -> tuple[str, str]:
    return await case_with_referral(client, auth, family_name=FAMILY)


async def test_concurrent_and_repeated_deletes_of_one_case(
    client: Client, api_node: ApiNode
) -> None:
    """Two DELETEs at once: one 200, one 410, never a 500; odd reasons and ids 400/404."""
    auth = api_node.auth
    case_id, _ = await _api_case(client, auth)
    url = f"{API}/cases/{case_id}?reason=consent_withdrawn"
    first, second = await asyncio.gather(
        client.delete(url, headers=auth), client.delete(url, headers=auth)
    )
    assert sorted([first.status, second.status]) == [200, 410]
    await _answer(await client.delete(url, headers=auth), 410)
    for reason in ("", "client_request%00", "CLIENT_REQUEST", "client_request&reason=other"):
        resp = await client.delete(f"{API}/cases/{case_id}?reason={reason}", headers=auth)
        assert resp.status in (400, 410), (reason, resp.status)
    for odd in ("0" * 32, "%2e%2e", "x" * 300):
        resp = await client.delete(f"{API}/cases/{odd}?reason=other", headers=auth)
        assert resp.status in (400, 404), (odd, resp.status)
        assert FAMILY not in await resp.text()


async def test_list_erasures_stays_within_the_contract_in_every_state(
    client: Client, api_node: ApiNode
) -> None:
    """GET /api/v1/erasures with notices pending, unsealed, overdue, answered, and
    requests flagged and settled: always 200 (a contract break would be a 500)."""
    auth = api_node.auth
    store: NodeStore = client.app[STORE]
    here = Office(node_id="caritas-nbg", store=store, clock=api_node.clock)
    peer_clock = FakeClock()
    peer_clock.t = api_node.clock.t
    peer: Office = await store.run(make_office, "awo-fue", clock=peer_clock)
    try:
        case_1, _ = await _api_case(client, auth)
        case_2, _ = await _api_case(client, auth)
        await store.run(deliver, here, peer)
        await store.run(deliver, peer, here)

        async def listing() -> dict[str, Any]:
            return await _answer(await client.get(f"{API}/erasures", headers=auth), 200)  # type: ignore[no-any-return]

        await _answer(await client.delete(f"{API}/cases/{case_1}?reason=other", headers=auth), 200)
        assert (await listing())["notices"][0]["receipt"] is None
        api_node.clock.advance(15 * DAY)
        assert (await listing())["notices"][0]["overdue"] is True
        api_node.clock.advance(-15 * DAY + 60)  # back before the notice expires
        peer_clock.t = api_node.clock.t
        await store.run(deliver, here, peer)
        await store.run(deliver, peer, here)
        answered = (await listing())["notices"][0]
        assert answered["receipt"]["document"]
        # A referral from the peer, accepted here, then erased there: flagged here.
        peer_case = await store.run(peer.store.cases.create, {**CASE, "family_name": FAMILY})
        await store.run(
            peer.store.consents.record, peer_case, consent_for("caritas-nbg", ["family_name"])
        )
        incoming = await store.run(
            peer.store.referrals.create,
            {
                "case_id": peer_case,
                "recipient": "caritas-nbg",
                "target_type": "mbe",
                "fields": ["family_name"],
            },
        )
        await store.run(deliver, peer, here)
        accepted = await _answer(
            await client.post(
                f"{API}/referrals/incoming/{incoming.referral_id}/accept", json={}, headers=auth
            ),
            200,
        )
        await store.run(deliver, here, peer)
        await store.run(lambda: peer.store.erasure.erase_case(peer_case, "client_request", app="t"))
        await store.run(deliver, peer, here)
        flagged = (await listing())["requests"]
        assert [r["settled"] for r in flagged] == [None]
        await _answer(
            await client.post(
                f"{API}/erasure-requests/{incoming.referral_id}/settle", headers=auth
            ),
            200,
        )
        assert (await listing())["requests"][0]["settlement"] == "case_kept"
        # An unsealable notice (the peer left the directory) and a pending one.
        await store.run(
            store.sync.store_directory,
            2,
            signed_directory(
                2, expires=api_node.clock.t + 30 * DAY, revoked=frozenset({"awo-fue"})
            ),
            None,
        )
        erased = await _answer(
            await client.delete(f"{API}/cases/{case_2}?reason=retention", headers=auth), 200
        )
        assert erased["notices"][0]["sealed"] is False
        final = await listing()
        assert {n["sealed"] for n in final["notices"]} == {True, False}
        await _answer(
            await client.delete(f"{API}/cases/{accepted['case_id']}?reason=other", headers=auth),
            200,
        )
        assert (await listing())["requests"][0]["settlement"] in ("case_kept", "case_erased")
    finally:
        await store.run(peer.store.close)
