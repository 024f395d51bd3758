"""The date of a reported outcome (a first appointment) is kept by both offices."""

from __future__ import annotations

from node.domain.referral_states import IN, OUT
from tests.node.conftest import CASE, Office, consent_for, deliver

FIELDS = ["given_name", "topics"]


def test_first_appointment_date_reaches_the_sender_and_stays_with_both(
    office_a: Office, office_b: Office
) -> None:
    case_id = office_a.store.cases.create(dict(CASE))
    office_a.store.consents.record(case_id, consent_for("awo-fue", FIELDS))
    rid = office_a.store.referrals.create(
        {"case_id": case_id, "recipient": "awo-fue", "target_type": "jmd", "fields": FIELDS}
    ).referral_id
    deliver(office_a, office_b)
    office_b.store.referrals.accept(rid)
    office_b.store.referrals.report(rid, "first_appointment", "2026-12-03", None)
    deliver(office_b, office_a)
    for office, direction in ((office_a, OUT), (office_b, IN)):
        history = office.store.referrals.history(direction, rid)
        dated = [(e["event"], e["date"]) for e in history if e["date"] is not None]
        assert dated == [("first_appointment", "2026-12-03")], office.node_id
