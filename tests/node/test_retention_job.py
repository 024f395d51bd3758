"""The retention job (node/jobs/retention.py): due closed cases are erased on their
own, held and open cases stay, and an interrupted round is finished by the next."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api import keys
from node.api.app import create_app
from node.cli import sync_background
from node.config import NodeSettings, RetentionSettings, load_keys
from node.errors import Gone
from node.jobs.retention import RETENTION, RetentionJob, erase_due_case, retention_ctx
from node.storage.erasure import ErasureResult
from node.storage.store import NodeStore
from tests.node.conftest import CASE, ApiNode, Office, consent_for, make_office, open_outbox

Client = TestClient[web.Request, web.Application]
THREE = RetentionSettings(years=3)


def at(clock_owner: Office | ApiNode, day: str) -> None:
    noon = dt.datetime.fromisoformat(day + "T12:00:00+00:00")
    clock_owner.clock.t = int(noon.timestamp())


@pytest.fixture
def offices(tmp_path: Path) -> Iterator[tuple[Office, Office]]:
    a = make_office("caritas-nbg", db_path=str(tmp_path / "a.db"))
    b = make_office("awo-fue", db_path=str(tmp_path / "b.db"))
    yield a, b
    a.store.close()
    b.store.close()


@pytest.fixture
def office(offices: tuple[Office, Office]) -> Office:
    return offices[0]


def case(office: Office, closed: str | None, opened: str = "2020-01-02") -> str:
    case_id = office.store.cases.create(CASE | {"opened": opened})
    if closed is not None:
        office.store.cases.close(case_id, "goals_achieved", closed)
    return case_id


def job(office: Office, **kwargs: Any) -> RetentionJob:
    return RetentionJob(office.store, kwargs.pop("settings", THREE), office.clock, **kwargs)


def erase_audits(office: Office) -> list[tuple[str, Any]]:
    rows = office.store.access.audit_rows()
    return [(str(r["app"]), r["case_id"]) for r in rows if r["action"] == "case.erase"]


def exists(office: Office, case_id: str) -> bool:
    return office.store.ctx.one("SELECT 1 FROM cases WHERE id = ?", (case_id,)) is not None


async def test_due_cases_are_erased_when_the_clock_reaches_their_date(office: Office) -> None:
    at(office, "2026-12-31")
    old = case(office, "2022-05-10")  # due since 2026-01-01
    next_year = case(office, "2023-11-30")  # due on 2027-01-01
    open_case = case(office, None, opened="2010-01-01")
    retention = job(office)

    done = await retention.run_once()
    assert done.erased == (old,)
    assert (exists(office, old), exists(office, next_year)) == (False, True)
    with pytest.raises(Gone):
        office.store.cases.get(old)
    assert office.store.ctx.one("SELECT reason FROM erased_cases WHERE case_id = ?", (old,)) == {
        "reason": "retention"
    }

    assert (await retention.run_once()).erased == ()  # nothing new on the same day
    at(office, "2027-01-01")
    assert (await retention.run_once()).erased == (next_year,)
    assert exists(office, open_case)  # open cases are never erased
    assert erase_audits(office) == [("retention", old), ("retention", next_year)]
    assert retention.rounds == 3


async def test_a_held_case_is_kept_until_released(office: Office) -> None:
    at(office, "2026-09-21")
    held = case(office, "2021-03-01")
    free = case(office, "2021-04-01")
    office.store.retention.hold(held, "legal_claim")
    retention = job(office)
    done = await retention.run_once()
    assert (done.erased, exists(office, held)) == ((free,), True)
    assert (await retention.run_once()).erased == ()
    office.store.retention.release(held)
    assert (await retention.run_once()).erased == (held,)


async def test_a_hold_placed_after_the_listing_is_respected(office: Office) -> None:
    """A case put on hold between the listing and its turn is skipped (409 inside)."""
    at(office, "2026-09-21")
    first = case(office, "2021-01-01")
    second = case(office, "2021-02-01")

    def erase_then_hold(store: NodeStore, case_id: str) -> ErasureResult:
        result = erase_due_case(store, case_id)
        if case_id == first:
            store.retention.hold(second, "official_request")
        return result

    done = await job(office, erase=erase_then_hold).run_once()
    assert (done.erased, done.skipped) == ((first,), 1)
    assert exists(office, second)


async def test_the_one_year_setting(office: Office) -> None:
    at(office, "2027-01-01")
    last_year = case(office, "2025-12-31")
    this_year = case(office, "2026-06-01")
    done = await job(office, settings=RetentionSettings(years=1)).run_once()
    assert done.erased == (last_year,)
    assert exists(office, this_year)


class Crash(sqlite3.OperationalError):
    """What a failing disk looks like to the job."""


async def test_an_interrupted_round_is_finished_after_a_restart_nothing_twice(
    offices: tuple[Office, Office],
) -> None:
    a, b = offices
    at(a, "2026-09-21")
    first = case(a, None)
    a.store.consents.record(first, consent_for("awo-fue", ["family_name"]))
    referral = a.store.referrals.create(
        {"case_id": first, "recipient": "awo-fue", "target_type": "jmd", "fields": ["family_name"]}
    )
    a.store.cases.close(first, "referred", "2021-01-10")  # recorded late: closed long ago
    second = case(a, "2021-02-10")
    third = case(a, "2022-03-10")
    calls: list[str] = []

    def crash_after_first(store: NodeStore, case_id: str) -> ErasureResult:
        if calls:
            raise Crash("disk I/O error")
        calls.append(case_id)
        return erase_due_case(store, case_id)

    woken: list[int] = []
    with pytest.raises(Crash):
        await job(a, erase=crash_after_first, listeners=[lambda: woken.append(1)]).run_once()
    assert [exists(a, c) for c in (first, second, third)] == [False, True, True]
    assert woken == [1]  # the first case's erasure notice is queued: the worker is woken

    restarted = job(a)  # a new process: no memory of the failed round
    done = await restarted.run_once()
    assert done.erased == (second, third)
    assert [exists(a, c) for c in (first, second, third)] == [False, False, False]
    assert erase_audits(a) == [("retention", c) for c in (first, second, third)]
    erased = a.store.ctx.all("SELECT case_id FROM erased_cases ORDER BY case_id")
    assert sorted(r["case_id"] for r in erased) == sorted([first, second, third])
    notices = a.store.ctx.all("SELECT referral_id, peer, reason FROM erasure_notices")
    assert notices == [
        {"referral_id": referral.referral_id, "peer": "awo-fue", "reason": "retention"}
    ]
    erase_messages = [m for m in open_outbox(a, b) if m.type == "referral.erase"]
    assert len(erase_messages) == 1
    assert (await restarted.run_once()).erased == ()


async def test_serve_runs_the_job_at_start(api_node: ApiNode, aiohttp_client: Any) -> None:
    """`mbe-node serve` wires the job (node/cli.py sync_background); it runs at start."""
    at(api_node, "2026-09-21")
    store = NodeStore.open(
        api_node.settings.db_path,
        load_keys(api_node.settings.key_path),
        api_node.deps,
        message_ttl=86400,
    )
    due = store.cases.create(CASE | {"opened": "2020-01-02"})
    store.cases.close(due, "goals_achieved", "2022-01-31")
    kept = store.cases.create(CASE | {"opened": "2020-01-02"})
    store.cases.close(kept, "goals_achieved", "2023-01-31")
    store.close()

    app = create_app(api_node.settings, deps=api_node.deps, background=[retention_ctx])
    client: Client = await aiohttp_client(app)
    retention = client.app[RETENTION]
    for _ in range(200):
        if retention.rounds:
            break
        await asyncio.sleep(0.01)
    assert retention.rounds == 1
    node_store = client.app[keys.STORE]
    remaining = await node_store.run(node_store.ctx.all, "SELECT id FROM cases")
    assert [r["id"] for r in remaining] == [kept]


def test_serve_wires_the_retention_job() -> None:
    assert retention_ctx in sync_background(NodeSettings(data_dir=Path(".")))
