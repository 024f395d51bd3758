"""Retention: the due list, holds and their routes (docs/client-rights.md, "Retention")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api import keys
from node.domain.retention import due_before, erase_on, is_due
from node.errors import Gone, InvalidInput, NotFound
from node.storage.retention import DueCounts
from tests.node.conftest import CASE, ApiNode, Office, make_office

Client = TestClient[web.Request, web.Application]
DAY = 86400


def at(clock_owner: Office | ApiNode, day: str) -> None:
    """Move the fake clock to noon UTC of `day`."""
    noon = dt.datetime.fromisoformat(day + "T12:00:00+00:00")
    clock_owner.clock.t = int(noon.timestamp())


@pytest.fixture
def office() -> Iterator[Office]:
    o = make_office("caritas-nbg")
    yield o
    o.store.close()


def closed_case(office: Office, closed: str | None, opened: str = "2020-01-02") -> str:
    case_id = office.store.cases.create(CASE | {"opened": opened})
    if closed is not None:
        office.store.cases.close(case_id, "goals_achieved", closed)
    return case_id


# ------------------------------------------------------------------ the rule


@pytest.mark.parametrize(
    ("closed", "years", "day", "due"),
    [
        ("2023-05-10", 3, "2026-12-31", False),
        ("2023-05-10", 3, "2027-01-01", True),
        ("2023-12-31", 3, "2027-01-01", True),
        ("2024-01-01", 3, "2027-12-31", False),
        ("2025-02-01", 1, "2027-01-01", True),
        ("2025-02-01", 1, "2026-12-31", False),
    ],
)
def test_due_before_agrees_with_the_domain_rule(
    closed: str, years: int, day: str, due: bool
) -> None:
    assert is_due(closed, years, day) is due
    assert (closed < due_before(years, day)) is due


# ------------------------------------------------------------------ due list


def test_due_lists_closed_cases_within_30_days_never_open_ones(office: Office) -> None:
    at(office, "2026-09-21")
    overdue = closed_case(office, "2022-05-10")  # erase_on 2026-01-01: due, not yet erased
    next_year = closed_case(office, "2023-03-01")  # erase_on 2027-01-01
    later = closed_case(office, "2024-06-30")  # erase_on 2028-01-01
    closed_case(office, None)  # open: never listed, however old
    closed_case(office, None, opened="2010-01-01")

    due = office.store.retention.due(office.clock.today(), 3)
    assert [(d.case_id, d.closed, d.erase_on, d.hold) for d in due] == [
        (overdue, "2022-05-10", "2026-01-01", None)
    ]

    at(office, "2026-12-01")  # 31 days before 2027-01-01: not yet
    assert [d.case_id for d in office.store.retention.due(office.clock.today(), 3)] == [overdue]
    at(office, "2026-12-02")  # 30 days before
    due = office.store.retention.due(office.clock.today(), 3)
    assert [(d.case_id, d.erase_on) for d in due] == [
        (overdue, "2026-01-01"),
        (next_year, "2027-01-01"),
    ]
    assert later not in {d.case_id for d in due}
    assert all(d.closed is not None for d in due)


def test_a_one_year_setting_works(office: Office) -> None:
    at(office, "2026-12-15")
    recent = closed_case(office, "2025-02-01")
    this_year = closed_case(office, "2026-03-01")
    due = office.store.retention.due(office.clock.today(), 1)
    assert [(d.case_id, d.erase_on) for d in due] == [(recent, "2027-01-01")]
    assert office.store.retention.erasable(office.clock.today(), 1) == []
    at(office, "2027-01-01")
    assert office.store.retention.erasable(office.clock.today(), 1) == [recent]
    assert this_year not in office.store.retention.erasable(office.clock.today(), 1)
    assert erase_on("2026-03-01", 1) == "2028-01-01"


def test_erasable_skips_held_cases_and_due_shows_the_hold(office: Office) -> None:
    at(office, "2026-09-21")
    first = closed_case(office, "2021-01-10")
    held = closed_case(office, "2022-02-10")
    office.store.retention.hold(held, "legal_claim")
    assert office.store.retention.erasable(office.clock.today(), 3) == [first]
    due = {d.case_id: d for d in office.store.retention.due(office.clock.today(), 3)}
    hold = due[held].hold
    assert hold is not None
    assert (hold.reason, hold.since) == ("legal_claim", office.clock.t)
    assert due[held].view()["hold"] == {"reason": "legal_claim", "since": "2026-09-21T12:00:00Z"}
    assert due[first].view()["hold"] is None
    counts = office.store.retention.counts(office.clock.today(), 3)
    assert counts == DueCounts(due=1, held=1)


# ------------------------------------------------------------------ holds


def test_hold_replace_and_release(office: Office) -> None:
    case_id = closed_case(office, "2022-05-10")
    hold, created = office.store.retention.hold(case_id, "legal_claim")
    assert created
    office.clock.advance(DAY)
    again, created = office.store.retention.hold(case_id, "official_request")
    assert not created
    assert (again.reason, again.since) == ("official_request", hold.since)
    assert office.store.retention.hold_of(case_id) == again
    assert office.store.retention.release(case_id) == again
    assert office.store.retention.hold_of(case_id) is None
    assert office.store.retention.release(case_id) is None  # nothing to release


def test_an_open_case_may_be_held(office: Office) -> None:
    case_id = closed_case(office, None)
    office.store.retention.hold(case_id, "client_request")
    hold = office.store.retention.hold_of(case_id)
    assert hold is not None
    assert hold.reason == "client_request"
    assert office.store.retention.due(office.clock.today(), 1) == []


def test_hold_refuses_unknown_reasons_and_cases(office: Office) -> None:
    case_id = closed_case(office, "2022-05-10")
    with pytest.raises(InvalidInput, match=r"hold\.reason"):
        office.store.retention.hold(case_id, "because")
    with pytest.raises(NotFound):
        office.store.retention.hold("0" * 32, "legal_claim")
    with pytest.raises(NotFound):
        office.store.retention.release("0" * 32)
    with pytest.raises(NotFound):
        office.store.retention.hold_of("0" * 32)
    assert office.store.retention.hold_of(case_id) is None


def test_the_hold_goes_with_an_erased_case(office: Office) -> None:
    case_id = closed_case(office, "2022-05-10")
    office.store.retention.hold(case_id, "other")
    office.store.retention.release(case_id)
    office.store.erasure.erase_case(case_id, "retention", app="retention")
    with pytest.raises(Gone):
        office.store.retention.hold(case_id, "other")
    assert office.store.ctx.all("SELECT * FROM retention_holds") == []


# ------------------------------------------------------------------ status figures


def test_health_counts_due_and_held_cases(office: Office) -> None:
    at(office, "2026-12-10")
    closed_case(office, "2022-05-10")
    closed_case(office, "2023-07-01")
    held = closed_case(office, "2023-08-01")
    closed_case(office, "2024-08-01")  # 2028
    closed_case(office, None)
    office.store.retention.hold(held, "statutory_retention")
    health = office.store.health(3)
    assert (health.retention_due, health.retention_held) == (2, 1)
    assert office.store.status(3)["retention_due"] == 2
    assert office.store.health(1).retention_due == 3  # 2024 closures are due in 2026 with 1 year


# ------------------------------------------------------------------ API


async def _case(client: Client, api_node: ApiNode, closed: str | None) -> str:
    resp = await client.post(
        "/api/v1/cases", json=CASE | {"opened": "2020-01-02"}, headers=api_node.auth
    )
    assert resp.status == 201, await resp.text()
    case_id: str = (await resp.json())["id"]
    if closed is not None:
        resp = await client.post(
            f"/api/v1/cases/{case_id}/close",
            json={"closure_reason": "goals_achieved", "closed": closed},
            headers=api_node.auth,
        )
        assert resp.status == 200, await resp.text()
    return case_id


async def _audit(client: Client, action: str) -> list[dict[str, Any]]:
    node_store = client.app[keys.STORE]
    rows = await node_store.run(node_store.access.audit_rows)
    return [r for r in rows if r["action"] == action]


async def test_due_route_lists_and_audits(client: Client, api_node: ApiNode) -> None:
    at(api_node, "2026-12-15")
    overdue = await _case(client, api_node, "2022-05-10")
    soon = await _case(client, api_node, "2023-03-01")
    await _case(client, api_node, "2024-03-01")
    await _case(client, api_node, None)
    resp = await client.put(
        f"/api/v1/cases/{soon}/hold", json={"reason": "legal_claim"}, headers=api_node.auth
    )
    assert resp.status == 201

    resp = await client.get("/api/v1/retention/due", headers=api_node.auth)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["today"] == "2026-12-15"
    assert (body["within_days"], body["years"]) == (30, 3)
    assert body["cases"] == [
        {"case_id": overdue, "closed": "2022-05-10", "erase_on": "2026-01-01", "hold": None},
        {
            "case_id": soon,
            "closed": "2023-03-01",
            "erase_on": "2027-01-01",
            "hold": {"reason": "legal_claim", "since": "2026-12-15T12:00:00Z"},
        },
    ]
    assert [(r["app"], r["case_id"]) for r in await _audit(client, "retention.due")] == [
        ("test-app", overdue),
        ("test-app", soon),
    ]
    status = await (await client.get("/api/v1/status", headers=api_node.auth)).json()
    assert (status["retention_due"], status["retention_held"]) == (1, 1)
    page = await (await client.get("/status")).text()
    assert "1 Akte wird in den nächsten 30 Tagen gelöscht, 1 zurückgehalten" in page
    assert page.count("<section") == page.count("</section>")


async def test_an_empty_due_list_is_audited_once(client: Client, api_node: ApiNode) -> None:
    resp = await client.get("/api/v1/retention/due", headers=api_node.auth)
    assert (await resp.json())["cases"] == []
    assert [r["case_id"] for r in await _audit(client, "retention.due")] == [None]


async def test_hold_and_release_are_audited(client: Client, api_node: ApiNode) -> None:
    case_id = await _case(client, api_node, "2022-05-10")
    url = f"/api/v1/cases/{case_id}/hold"
    resp = await client.put(url, json={"reason": "official_request"}, headers=api_node.auth)
    assert resp.status == 201
    assert await resp.json() == {
        "case_id": case_id,
        "reason": "official_request",
        "since": "2026-09-21T14:13:20Z",
    }
    resp = await client.put(url, json={"reason": "legal_claim"}, headers=api_node.auth)
    assert resp.status == 200
    assert (await resp.json())["reason"] == "legal_claim"
    resp = await client.delete(url, headers=api_node.auth)
    assert resp.status == 204
    resp = await client.delete(url, headers=api_node.auth)
    assert resp.status == 204  # released already: nothing changes
    holds = await _audit(client, "retention.hold")
    releases = await _audit(client, "retention.release")
    assert [(r["app"], r["case_id"]) for r in holds] == [("test-app", case_id)] * 2
    assert [(r["app"], r["case_id"]) for r in releases] == [("test-app", case_id)] * 2


@pytest.mark.parametrize(
    "body", [{"reason": "because"}, {}, {"reason": 1}, {"reason": "x", "y": 1}]
)
async def test_hold_with_a_bad_reason_is_400(
    client: Client, api_node: ApiNode, body: dict[str, Any]
) -> None:
    case_id = await _case(client, api_node, "2022-05-10")
    resp = await client.put(f"/api/v1/cases/{case_id}/hold", json=body, headers=api_node.auth)
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    assert await _audit(client, "retention.hold") == []


async def test_hold_of_an_unknown_case_is_404_and_not_audited(
    client: Client, api_node: ApiNode
) -> None:
    url = f"/api/v1/cases/{'0' * 32}/hold"
    resp = await client.put(url, json={"reason": "legal_claim"}, headers=api_node.auth)
    assert resp.status == 404
    resp = await client.delete(url, headers=api_node.auth)
    assert resp.status == 404
    assert await _audit(client, "retention.hold") == []
    assert await _audit(client, "retention.release") == []


async def test_retention_routes_need_a_token(client: Client, api_node: ApiNode) -> None:
    case_id = await _case(client, api_node, "2022-05-10")
    assert (await client.get("/api/v1/retention/due")).status == 401
    url = f"/api/v1/cases/{case_id}/hold"
    assert (await client.put(url, json={"reason": "legal_claim"})).status == 401
    assert (await client.delete(url)).status == 401
