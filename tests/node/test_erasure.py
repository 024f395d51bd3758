"""Erased client data leaves no trace in the node's files (database, WAL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.domain.referral_states import IN
from tests.node.conftest import CASE, Office, consent_for, deliver, make_office

FIELDS = ["given_name", "family_name", "birth_year", "topics"]
MARKER = "Zqxmarkerfamily"


@pytest.fixture
def file_offices(tmp_path: Path) -> Iterator[tuple[Office, Office, Path]]:
    a = make_office("caritas-nbg")
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    b = make_office("awo-fue", db_path=str(b_dir / "node.db"))
    yield a, b, b_dir
    a.store.close()
    b.store.close()


def _refer(a: Office) -> str:
    case_id = a.store.cases.create({**CASE, "family_name": MARKER})
    a.store.consents.record(case_id, consent_for("awo-fue", FIELDS))
    ref = a.store.referrals.create(
        {"case_id": case_id, "recipient": "awo-fue", "target_type": "jmd", "fields": FIELDS}
    )
    return ref.referral_id


def _files_containing(directory: Path, needle: str) -> list[str]:
    return [p.name for p in sorted(directory.iterdir()) if needle.encode() in p.read_bytes()]


def test_declined_referral_leaves_no_trace_in_database_files(
    file_offices: tuple[Office, Office, Path],
) -> None:
    """After B declines, the client's name is in none of B's files, WAL included."""
    a, b, b_dir = file_offices
    rid = _refer(a)
    deliver(a, b)
    assert _files_containing(b_dir, MARKER), "control: the received name is on disk at first"
    b.store.referrals.decline(rid, "no_capacity")
    assert _files_containing(b_dir, MARKER) == []


def test_withdrawn_referral_leaves_no_trace_in_database_files(
    file_offices: tuple[Office, Office, Path],
) -> None:
    """After A withdraws an accepted referral, B's files no longer hold the client's name."""
    a, b, b_dir = file_offices
    rid = _refer(a)
    deliver(a, b)
    b.store.referrals.accept(rid)
    deliver(b, a)
    assert _files_containing(b_dir, MARKER)
    a.store.referrals.withdraw(rid, "consent_withdrawn")
    deliver(a, b)
    assert b.store.referrals.get(IN, rid).state == "withdrawn"
    assert _files_containing(b_dir, MARKER) == []
