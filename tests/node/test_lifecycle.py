"""Unanswered referrals expire; withdrawing a consent withdraws the referrals relying on it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from node.cli import sync_background
from node.config import NodeSettings, ReferralSettings, default_config, parse_settings
from node.domain.referral_states import IN, OUT
from node.errors import ConfigError, ConflictError, IllegalTransition
from node.jobs.housekeeping import ReferralHousekeeping, referral_housekeeping_ctx
from node.storage import lifecycle
from node.storage.context import iso
from node.storage.lifecycle import CONTACT_RECIPIENT, WITHDRAWAL_PENDING, WITHDRAWN
from protocol.payloads import ReferralWithdraw
from tests.node.conftest import (
    CASE,
    T0,
    ApiNode,
    FakeClock,
    Office,
    consent_for,
    deliver,
    make_office,
    open_outbox,
    signed_directory,
)

FIELDS = ["given_name", "family_name", "topics"]
DAY = 86400


@pytest.fixture
def pair() -> Iterator[tuple[Office, Office]]:
    """Two offices that share one fake clock, so sealed messages stay valid for both."""
    clock = FakeClock()
    a, b = make_office("caritas-nbg", clock=clock), make_office("awo-fue", clock=clock)
    yield a, b
    a.store.close()
    b.store.close()


def _case(office: Office, recipient: str = "awo-fue") -> tuple[str, str]:
    case_id = office.store.cases.create(dict(CASE))
    consent = office.store.consents.record(case_id, consent_for(recipient, FIELDS))
    return case_id, consent.consent_id


def _refer(office: Office, case_id: str, recipient: str = "awo-fue") -> str:
    ref = office.store.referrals.create(
        {"case_id": case_id, "recipient": recipient, "target_type": "mbe", "fields": FIELDS}
    )
    return ref.referral_id


def _withdrawals(sender: Office, recipient: Office) -> list[tuple[str, str]]:
    return [
        (m.payload.referral_id, m.payload.reason)
        for m in open_outbox(sender, recipient)
        if isinstance(m.payload, ReferralWithdraw)
    ]


# ------------------------------------------------------------------------ expiry


def test_unanswered_referral_expires_after_the_window_and_recipient_deletes(
    pair: tuple[Office, Office],
) -> None:
    """Delivered, unanswered for 14 days: expired with time and reason; B deletes and confirms."""
    a, b = pair
    rid = _refer(a, _case(a)[0])
    deliver(a, b)
    deliver(b, a)  # the receipt
    assert a.store.referrals.get(OUT, rid).state == "delivered"

    a.clock.advance(14 * DAY - 1)
    assert a.store.lifecycle.run(14).expired_out == ()
    a.clock.advance(1)
    done = a.store.lifecycle.run(14)
    assert (done.expired_out, done.queued) == ((rid,), True)
    ref = a.store.referrals.get(OUT, rid)
    assert (ref.state, ref.reason) == ("expired", "unanswered")
    last = a.store.referrals.history(OUT, rid)[-1]
    assert (last["event"], last["state"], last["reason"]) == ("expire", "expired", "unanswered")
    assert last["at"] == iso(T0 + 14 * DAY)  # from the injected clock
    assert _withdrawals(a, b) == [(rid, "other")]

    deliver(a, b)
    incoming = b.store.referrals.get(IN, rid)
    assert (incoming.state, incoming.client) == ("withdrawn", None)
    deliver(b, a)
    after = a.store.referrals.get(OUT, rid)
    assert after.state == "expired"
    assert a.store.referrals.history(OUT, rid)[-1]["event"] == "withdrawal_confirmed"
    assert a.store.health().withdrawals_pending == 0


def test_recipient_expires_an_offer_it_never_answered(pair: tuple[Office, Office]) -> None:
    """B deletes the client data of an offer it left unanswered, even if A never says so."""
    a, b = pair
    rid = _refer(a, _case(a)[0])
    deliver(a, b)
    b.clock.advance(14 * DAY)
    done = b.store.lifecycle.run(14)
    assert (done.expired_in, done.queued) == ((rid,), False)
    incoming = b.store.referrals.get(IN, rid)
    assert (incoming.state, incoming.client, incoming.reason) == ("expired", None, "unanswered")
    assert "Haddad" not in str(b.store.db.execute("SELECT * FROM referrals").fetchall())
    with pytest.raises(IllegalTransition):
        b.store.referrals.accept(rid)
    # A's own expiry withdraws it later; B, already clean, confirms all the same.
    a.store.lifecycle.run(14)
    deliver(a, b)
    assert b.store.referrals.get(IN, rid).state == "withdrawn"


def test_answered_referrals_never_expire(pair: tuple[Office, Office]) -> None:
    """Accepted and declined referrals stay as they are however old they get."""
    a, b = pair
    accepted, declined = _refer(a, _case(a)[0]), _refer(a, _case(a)[0])
    deliver(a, b)
    b.store.referrals.accept(accepted)
    b.store.referrals.decline(declined, "no_capacity")
    deliver(b, a)
    a.clock.advance(60 * DAY)
    assert a.store.lifecycle.run(14).expired_out == ()
    assert b.store.lifecycle.run(14).expired_in == ()
    assert a.store.referrals.get(OUT, accepted).state == "accepted"
    assert a.store.referrals.get(OUT, declined).state == "declined"
    assert _withdrawals(a, b) == []


def test_late_acceptance_after_expiry_is_refused_and_cleaned_up(
    pair: tuple[Office, Office],
) -> None:
    """B accepts just after A expired it: A refuses the reply, B's new case loses the data."""
    a, b = pair
    rid = _refer(a, _case(a)[0])
    deliver(a, b)
    deliver(b, a)  # the receipt
    a.clock.advance(14 * DAY)
    a.store.lifecycle.run(14)
    case_b = b.store.referrals.accept(rid).case_id
    assert case_b is not None
    deliver(b, a)
    assert a.store.referrals.get(OUT, rid).state == "expired"
    refused = a.store.db.execute("SELECT reason FROM refused").fetchall()
    assert [r[0] for r in refused] == ["illegal-transition: expired by accepted"]
    deliver(a, b)
    assert b.store.referrals.get(IN, rid).state == "withdrawn"
    assert b.store.cases.get(case_b)["family_name"] is None


def test_expiry_to_a_revoked_office_is_sealed_when_it_can_be(pair: tuple[Office, Office]) -> None:
    """Without the recipient in the directory the expiry still happens; the withdrawal follows."""
    a, b = pair
    rid = _refer(a, _case(a)[0])
    deliver(a, b)
    a.store.sync.store_directory(2, signed_directory(2, revoked=frozenset({"awo-fue"})), None)
    a.clock.advance(15 * DAY)
    done = a.store.lifecycle.run(14)
    assert (done.expired_out, done.withdrawals_sent) == ((rid,), ())
    assert a.store.referrals.get(OUT, rid).state == "expired"
    health = a.store.health()
    assert health.withdrawals_pending == 1
    assert "withdrawals_pending" in health.warnings()
    assert a.store.lifecycle.run(14).withdrawals_sent == ()  # still revoked: tried again
    a.store.sync.store_directory(3, signed_directory(3, expires=a.clock.t + 30 * DAY), None)
    assert a.store.lifecycle.run(14).withdrawals_sent == (rid,)
    assert a.store.health().withdrawals_pending == 0
    assert _withdrawals(a, b) == [(rid, "other")]


def test_pending_withdrawal_clause_matches_the_code() -> None:
    """The SQL literals of PENDING_WITHDRAWAL are the constants the code uses."""
    assert f"r.reason = '{lifecycle.UNANSWERED}'" in lifecycle.PENDING_WITHDRAWAL
    assert f"s.type = '{ReferralWithdraw.TYPE}'" in lifecycle.PENDING_WITHDRAWAL


async def test_background_task_expires_with_the_injected_clock(
    pair: tuple[Office, Office],
) -> None:
    """The housekeeping task runs a round at start, by the injected clock, and wakes the worker."""
    a, _ = pair
    rid = _refer(a, _case(a)[0])
    a.clock.advance(20 * DAY)
    woken: list[int] = []
    task = ReferralHousekeeping(
        a.store.lifecycle, ReferralSettings(check_interval=1.0), [lambda: woken.append(1)]
    )
    await task.start()
    for _ in range(100):
        if task.rounds:
            break
        await asyncio.sleep(0.01)
    await task.stop()
    assert task.rounds >= 1
    assert a.store.referrals.get(OUT, rid).state == "expired"
    assert woken == [1]


def test_housekeeping_runs_with_the_sync_worker(tmp_path: Path) -> None:
    """mbe-node serve registers the expiry task among its background cleanup_ctx functions."""
    assert referral_housekeeping_ctx in sync_background(NodeSettings(data_dir=tmp_path))


# ------------------------------------------------------------ consent withdrawal


def test_withdrawing_consent_withdraws_open_referrals_only(pair: tuple[Office, Office]) -> None:
    """Open referrals are withdrawn and deleted at B; completed ones are listed, untouched."""
    a, b = pair
    case_id, consent_id = _case(a)
    sent, accepted, completed, declined = (_refer(a, case_id) for _ in range(4))
    deliver(a, b)
    b.store.referrals.accept(accepted)
    completed_case = b.store.referrals.accept(completed).case_id
    b.store.referrals.report(completed, "completed_successful", None, None)
    b.store.referrals.decline(declined, "no_capacity")
    deliver(b, a)
    assert a.store.referrals.get(OUT, completed).state == "completed_successful"

    consent, affected = a.store.lifecycle.withdraw_consent(consent_id)
    assert consent.withdrawn == "2026-09-21"
    assert {x.referral_id: (x.state, x.action) for x in affected} == {
        sent: ("withdrawn", WITHDRAWN),
        accepted: ("withdrawn", WITHDRAWN),
        completed: ("completed_successful", CONTACT_RECIPIENT),
    }
    assert a.store.referrals.get(OUT, sent).reason == "consent_withdrawn"
    assert a.store.referrals.get(OUT, declined).state == "declined"
    assert sorted(_withdrawals(a, b)) == sorted(
        [(sent, "consent_withdrawn"), (accepted, "consent_withdrawn")]
    )

    deliver(a, b)
    for rid in (sent, accepted):
        incoming = b.store.referrals.get(IN, rid)
        assert (incoming.state, incoming.client) == ("withdrawn", None)
    assert b.store.referrals.get(IN, completed).state == "completed_successful"
    assert completed_case is not None
    assert b.store.cases.get(completed_case)["family_name"] == "Haddad"
    deliver(b, a)
    assert a.store.referrals.get(OUT, sent).state == "withdrawal_confirmed"
    assert a.store.referrals.get(OUT, accepted).state == "withdrawal_confirmed"
    assert a.store.referrals.get(OUT, completed).state == "completed_successful"


def test_consent_and_referral_withdrawal_are_one_transaction(
    pair: tuple[Office, Office], monkeypatch: pytest.MonkeyPatch
) -> None:
    """If withdrawing a referral fails, the consent stays valid and nothing is queued."""
    a, _ = pair
    case_id, consent_id = _case(a)
    _refer(a, case_id)
    queued = len(a.store.sync.outbox_pending(100))

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(a.store.referrals, "transition", broken)
    with pytest.raises(RuntimeError):
        a.store.lifecycle.withdraw_consent(consent_id)
    assert a.store.consents.get(consent_id).withdrawn is None
    assert len(a.store.sync.outbox_pending(100)) == queued
    monkeypatch.undo()
    a.store.lifecycle.withdraw_consent(consent_id)
    with pytest.raises(ConflictError):
        a.store.lifecycle.withdraw_consent(consent_id)


def test_consent_withdrawal_never_fails_for_a_revoked_recipient(
    pair: tuple[Office, Office],
) -> None:
    """A recipient gone from the directory: withdrawn here, the message marked pending."""
    a, _ = pair
    case_id, consent_id = _case(a)
    rid = _refer(a, case_id)
    a.store.sync.store_directory(2, signed_directory(2, revoked=frozenset({"awo-fue"})), None)
    consent, affected = a.store.lifecycle.withdraw_consent(consent_id)
    assert consent.withdrawn is not None
    assert [(x.referral_id, x.action) for x in affected] == [(rid, WITHDRAWAL_PENDING)]
    assert a.store.referrals.get(OUT, rid).state == "withdrawn"
    assert a.store.health().withdrawals_pending == 1


def test_referral_settings_bounds() -> None:
    """answer_within_days and check_interval refuse values outside their range."""
    assert ReferralSettings().answer_within_days == 14
    with pytest.raises(ConfigError, match="answer_within_days"):
        ReferralSettings(answer_within_days=0)
    with pytest.raises(ConfigError, match="check_interval"):
        ReferralSettings(check_interval=0.5)


async def test_api_consent_withdrawal_lists_the_referrals_it_touched(
    client: TestClient[web.Request, web.Application], api_node: ApiNode
) -> None:
    """POST /consents/{id}/withdraw answers the consent plus affected referrals, per the spec."""
    auth = api_node.auth
    case = await (await client.post("/api/v1/cases", json=CASE, headers=auth)).json()
    consent = await (
        await client.post(
            f"/api/v1/cases/{case['id']}/consents",
            json=consent_for("awo-fue", FIELDS),
            headers=auth,
        )
    ).json()
    body = {"case_id": case["id"], "recipient": "awo-fue", "target_type": "mbe", "fields": FIELDS}
    ref = await (await client.post("/api/v1/referrals/outgoing", json=body, headers=auth)).json()
    resp = await client.post(f"/api/v1/consents/{consent['id']}/withdraw", json={}, headers=auth)
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert (data["id"], data["valid"]) == (consent["id"], False)
    assert data["referrals"] == [
        {"id": ref["id"], "peer": "awo-fue", "state": "withdrawn", "action": "withdrawn"}
    ]
    got = await (await client.get(f"/api/v1/referrals/outgoing/{ref['id']}", headers=auth)).json()
    assert (got["state"], got["reason"]) == ("withdrawn", "consent_withdrawn")


def test_referrals_table_in_node_toml(tmp_path: Path) -> None:
    """[referrals] is read from node.toml, checked, and written by init with its defaults."""
    settings = parse_settings("[referrals]\nanswer_within_days = 30\n", tmp_path)
    assert settings.referrals == ReferralSettings(answer_within_days=30)
    with pytest.raises(ConfigError, match=r"\[referrals\].answer_within_days must be between"):
        parse_settings("[referrals]\nanswer_within_days = 0\n", tmp_path)
    with pytest.raises(ConfigError, match=r"unknown key \[referrals\].days"):
        parse_settings("[referrals]\ndays = 3\n", tmp_path)
    assert parse_settings(default_config("X"), tmp_path).referrals == ReferralSettings()


def test_readme_documents_the_referrals_keys() -> None:
    """The README's node.toml reference names both [referrals] keys."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### node.toml", 1)[1].split("\n### ", 1)[0]
    assert "`referrals.answer_within_days`" in section
    assert "`referrals.check_interval`" in section
