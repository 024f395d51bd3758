"""The case store: migrations, cases, contacts, agreements, consents, tokens, audit."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.errors import ConflictError, InvalidInput, NotFound
from node.storage.db import migrations, open_database, schema_version
from tests.node.conftest import CASE, Office, consent_for


def test_migrations_apply_in_order_once(tmp_path: Path) -> None:
    """A new database gets every migration; reopening applies none twice, WAL is on."""
    path = tmp_path / "node.db"
    db = open_database(path)
    assert schema_version(db) == len(migrations()) >= 1
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.conn.close()
    again = open_database(path)
    rows = again.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [r[0] for r in rows] == list(range(1, len(migrations()) + 1))
    assert {"cases", "referrals", "outbox", "inbox_seen", "audit"} <= set(again.table_names())


def test_case_create_get_update_close(office_a: Office) -> None:
    """A case round-trips, can be updated and closed, and a closed case refuses updates."""
    cases = office_a.store.cases
    case_id = cases.create(dict(CASE))
    got = cases.get(case_id)
    assert got["topics"] == ["housing", "language_course"]
    assert got["opened"] == office_a.clock.today()
    assert cases.update(case_id, {"german_level": "B2", "phone": None})["german_level"] == "B2"
    assert cases.get(case_id)["phone"] is None
    closed = cases.close(case_id, "goals_achieved")
    assert (closed["closed"], closed["closure_reason"]) == (
        office_a.clock.today(),
        "goals_achieved",
    )
    with pytest.raises(ConflictError):
        cases.update(case_id, {"german_level": "C1"})
    assert [c["id"] for c in cases.list_cases(status="closed")] == [case_id]
    assert cases.list_cases(status="open") == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gender", "x"),
        ("nationality", "Syria"),
        ("case_type", "long"),
        ("topics", ["cooking"]),
        ("birth_year", "1990"),
        ("entry_month", "2021-13"),
        ("unknown_field", 1),
    ],
)
def test_case_values_are_checked_against_code_lists(
    office_a: Office, field: str, value: object
) -> None:
    """A value outside its code list is refused and the error names the field, not the value."""
    with pytest.raises(InvalidInput) as info:
        office_a.store.cases.create(dict(CASE) | {field: value})
    assert field in str(info.value)
    assert str(value) not in str(info.value).replace(field, "")


def test_contacts_and_agreements(office_a: Office) -> None:
    """Contacts and a Förderplan with goals are stored per case and goals can be updated."""
    cases = office_a.store.cases
    case_id = cases.create(dict(CASE))
    cases.add_contact(case_id, {"date": "2026-09-02", "channel": "phone", "minutes": 20})
    cases.add_contact(
        case_id, {"date": "2026-09-01", "channel": "in_person", "minutes": 45, "topics": ["debt"]}
    )
    assert [c["channel"] for c in cases.contacts(case_id)] == ["in_person", "phone"]
    goals = [
        {"goal": "Sprachkurs B2", "measure": "Anmeldung VHS", "due": "2026-12-01", "status": "open"}
    ]
    agreement = cases.add_agreement(case_id, "2026-09-05", goals)
    goals[0]["status"] = "achieved"
    updated = cases.update_agreement(case_id, agreement["id"], goals)
    assert updated["goals"][0]["status"] == "achieved"
    with pytest.raises(InvalidInput):
        cases.add_agreement(case_id, "2026-09-05", [{"goal": "x", "measure": "y", "status": "?"}])
    with pytest.raises(NotFound):
        cases.add_contact("0" * 32, {"date": "2026-09-02", "channel": "phone", "minutes": 5})


def test_consents_record_and_withdraw(office_a: Office) -> None:
    """A consent is valid once recorded, invalid once withdrawn, and cannot be withdrawn twice."""
    case_id = office_a.store.cases.create(dict(CASE))
    consent = office_a.store.consents.record(case_id, consent_for("awo-fue", ["gender"]))
    assert consent.problem_at(office_a.clock.today()) is None
    withdrawn = office_a.store.consents.withdraw(consent.consent_id)
    assert withdrawn.problem_at(office_a.clock.today()) == "withdrawn"
    with pytest.raises(ConflictError):
        office_a.store.consents.withdraw(consent.consent_id)
    with pytest.raises(InvalidInput):
        office_a.store.consents.record(case_id, consent_for("awo-fue", ["shoe_size"]))


def test_tokens_are_stored_hashed(office_a: Office) -> None:
    """A token is shown once, only its hash is stored, and it identifies its app."""
    token = office_a.store.access.create_token("beratungs-app")
    stored = office_a.store.db.execute("SELECT hash FROM app_tokens").fetchall()
    assert token not in str(stored)
    assert office_a.store.access.app_for(token) == "beratungs-app"
    assert office_a.store.access.app_for(token + "x") is None
    with pytest.raises(ConflictError):
        office_a.store.access.create_token("beratungs-app")
    with pytest.raises(InvalidInput):
        office_a.store.access.create_token("bad name!")


def test_audit_rows_hold_ids_only(office_a: Office) -> None:
    """Audit rows record app, action and ids, and nothing from the case."""
    case_id = office_a.store.cases.create(dict(CASE))
    office_a.store.access.audit("app", "case.read", case_id=case_id)
    rows = office_a.store.access.audit_rows(case_id)
    assert [(r["app"], r["action"], r["case_id"]) for r in rows] == [("app", "case.read", case_id)]
    assert "Haddad" not in str(office_a.store.db.execute("SELECT * FROM audit").fetchall())
