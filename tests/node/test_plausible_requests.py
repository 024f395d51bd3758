"""Consents and referrals that cannot be right are refused, saying what is possible."""

from __future__ import annotations

import pytest

from node.domain.referral_states import OUT
from node.errors import InvalidInput
from tests.node.conftest import CASE, Office, consent_for


def test_consent_for_an_office_that_does_not_exist_lists_the_known_ones(
    office_a: Office,
) -> None:
    case_id = office_a.store.cases.create(dict(CASE))
    with pytest.raises(InvalidInput) as refused:
        office_a.store.consents.record(case_id, consent_for("awo-fuerth", ["topics"]))
    assert "awo-fuerth is not an active office" in str(refused.value)
    assert "known offices: awo-fue, caritas-nbg, diakonie-er" in str(refused.value)
    assert office_a.store.consents.for_case(case_id) == []


def test_consent_dated_in_the_future_is_refused(office_a: Office) -> None:
    case_id = office_a.store.cases.create(dict(CASE))
    with pytest.raises(InvalidInput, match=r"consent\.given: lies in the future"):
        office_a.store.consents.record(
            case_id, consent_for("awo-fue", ["topics"], given="2099-01-01")
        )


def test_referral_for_a_service_the_recipient_does_not_offer(office_a: Office) -> None:
    """awo-fue offers mbe and jmd: psychosocial is refused naming both; other goes."""
    case_id = office_a.store.cases.create(dict(CASE))
    office_a.store.consents.record(case_id, consent_for("awo-fue", ["topics"]))
    request = {"case_id": case_id, "recipient": "awo-fue", "fields": ["topics"]}
    with pytest.raises(InvalidInput) as refused:
        office_a.store.referrals.create(request | {"target_type": "psychosocial"})
    assert "does not offer psychosocial; it offers mbe, jmd" in str(refused.value)
    assert office_a.store.referrals.list_referrals(OUT) == []
    assert office_a.store.referrals.create(request | {"target_type": "other"}).state == "sent"
