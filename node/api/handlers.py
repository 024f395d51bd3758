"""Route handlers. Requests reach them already checked against the spec.

Each handler that reads or changes a case writes one audit row (app, action,
ids) per case or referral it touches; a list writes all its rows in one
transaction. Handlers that queue a message notify the outbox listeners so the sync
worker uploads at once; none of them waits for the hub.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from node.api import keys
from node.domain.referral_states import IN, OUT, Direction
from node.storage.referrals import Referral
from node.storage.store import NodeStore

RouteTable = list[tuple[str, str, Any]]


def _store(request: web.Request) -> NodeStore:
    return request.app[keys.STORE]


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    data = json.loads(raw)
    return data if isinstance(data, dict) else {}


def _audit(
    request: web.Request, action: str, case_id: str | None, referral_id: str | None = None
) -> None:
    _store(request).access.audit(
        request[keys.APP_NAME], action, case_id=case_id, referral_id=referral_id
    )


def _audit_all(request: web.Request, rows: list[tuple[str, str | None, str | None]]) -> None:
    """Every audit row of one request, in one transaction."""
    _store(request).access.audit_many(request[keys.APP_NAME], rows)


def _queued(request: web.Request) -> None:
    for listener in request.app[keys.OUTBOX_LISTENERS]:
        listener()


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


# ------------------------------------------------------------------ status etc.


async def get_status(request: web.Request) -> web.Response:
    return _json(_store(request).status())


async def search_directory(request: web.Request) -> web.Response:
    store = _store(request)
    q = request.query
    offices = store.network.search(
        service=q.get("service"), language=q.get("language"), area=q.get("area")
    )
    return _json({"version": store.network.directory().version, "offices": offices})


# ------------------------------------------------------------------------ cases


async def list_cases(request: web.Request) -> web.Response:
    q = request.query
    cases = _store(request).cases.list_cases(
        status=q.get("status"), limit=int(q.get("limit", 100)), offset=int(q.get("offset", 0))
    )
    _audit_all(request, [("case.list", case["id"], None) for case in cases])
    return _json({"cases": cases})


async def create_case(request: web.Request) -> web.Response:
    store = _store(request)
    case_id = store.cases.create(await _body(request))
    _audit(request, "case.create", case_id)
    return _json(store.cases.get(case_id), 201)


async def get_case(request: web.Request) -> web.Response:
    case_id = request.match_info["case_id"]
    case = _store(request).cases.get(case_id)
    _audit(request, "case.read", case_id)
    return _json(case)


async def update_case(request: web.Request) -> web.Response:
    case_id = request.match_info["case_id"]
    case = _store(request).cases.update(case_id, await _body(request))
    _audit(request, "case.update", case_id)
    return _json(case)


async def close_case(request: web.Request) -> web.Response:
    case_id = request.match_info["case_id"]
    body = await _body(request)
    case = _store(request).cases.close(case_id, body["closure_reason"], body.get("closed"))
    _audit(request, "case.close", case_id)
    return _json(case)


async def list_contacts(request: web.Request) -> web.Response:
    case_id = request.match_info["case_id"]
    contacts = _store(request).cases.contacts(case_id)
    _audit(request, "contact.list", case_id)
    return _json({"contacts": contacts})


async def add_contact(request: web.Request) -> web.Response:
    case_id = request.match_info["case_id"]
    contact = _store(request).cases.add_contact(case_id, await _body(request))
    _audit(request, "contact.create", case_id)
    return _json(contact, 201)


async def list_agreements(request: web.Request) -> web.Response:
    case_id = request.match_info["case_id"]
    agreements = _store(request).cases.agreements(case_id)
    _audit(request, "agreement.list", case_id)
    return _json({"agreements": agreements})


async def add_agreement(request: web.Request) -> web.Response:
    case_id = request.match_info["case_id"]
    body = await _body(request)
    agreement = _store(request).cases.add_agreement(case_id, body["agreed"], body["goals"])
    _audit(request, "agreement.create", case_id)
    return _json(agreement, 201)


async def update_agreement(request: web.Request) -> web.Response:
    case_id = request.match_info["case_id"]
    body = await _body(request)
    agreement = _store(request).cases.update_agreement(
        case_id, request.match_info["agreement_id"], body["goals"]
    )
    _audit(request, "agreement.update", case_id)
    return _json(agreement)


# --------------------------------------------------------------------- consents


async def list_consents(request: web.Request) -> web.Response:
    store = _store(request)
    case_id = request.match_info["case_id"]
    store.cases.row(case_id)
    today = store.ctx.today()
    consents = [c.view(today) for c in store.consents.for_case(case_id)]
    _audit(request, "consent.list", case_id)
    return _json({"consents": consents})


async def record_consent(request: web.Request) -> web.Response:
    store = _store(request)
    case_id = request.match_info["case_id"]
    consent = store.consents.record(case_id, await _body(request))
    _audit(request, "consent.create", case_id)
    return _json(consent.view(store.ctx.today()), 201)


async def withdraw_consent(request: web.Request) -> web.Response:
    """Withdraw a consent and the open referrals that rely on it (node/storage/lifecycle.py)."""
    store = _store(request)
    body = await _body(request)
    consent, affected = store.lifecycle.withdraw_consent(
        request.match_info["consent_id"], body.get("date")
    )
    _audit_all(
        request,
        [("consent.withdraw", consent.case_id, None)]
        + [
            ("referral.withdraw", consent.case_id, ref.referral_id)
            for ref in affected
            if ref.state == "withdrawn"
        ],
    )
    if affected:
        _queued(request)
    view = consent.view(store.ctx.today()) | {"referrals": [a.view() for a in affected]}
    return _json(view)


# -------------------------------------------------------------------- referrals


def _referral(request: web.Request, ref: Referral, action: str) -> web.Response:
    _audit(request, action, ref.case_id, ref.referral_id)
    return _json(_store(request).referrals.view(ref))


async def create_referral(request: web.Request) -> web.Response:
    store = _store(request)
    ref = store.referrals.create(await _body(request))
    _queued(request)
    _audit(request, "referral.create", ref.case_id, ref.referral_id)
    return _json(store.referrals.view(ref), 201)


def _lister(direction: Direction) -> Any:
    async def handler(request: web.Request) -> web.Response:
        store = _store(request)
        refs = store.referrals.list_referrals(direction, state=request.query.get("state"))
        _audit_all(request, [("referral.list", r.case_id, r.referral_id) for r in refs])
        return _json({"referrals": [store.referrals.view(r) for r in refs]})

    return handler


def _getter(direction: Direction) -> Any:
    async def handler(request: web.Request) -> web.Response:
        ref = _store(request).referrals.get(direction, request.match_info["referral_id"])
        return _referral(request, ref, "referral.read")

    return handler


async def withdraw_referral(request: web.Request) -> web.Response:
    body = await _body(request)
    ref = _store(request).referrals.withdraw(request.match_info["referral_id"], body["reason"])
    _queued(request)
    return _referral(request, ref, "referral.withdraw")


async def accept_referral(request: web.Request) -> web.Response:
    body = await _body(request)
    ref = _store(request).referrals.accept(request.match_info["referral_id"], body)
    _queued(request)
    return _referral(request, ref, "referral.accept")


async def decline_referral(request: web.Request) -> web.Response:
    body = await _body(request)
    ref = _store(request).referrals.decline(
        request.match_info["referral_id"], body["reason"], body.get("note")
    )
    _queued(request)
    return _referral(request, ref, "referral.decline")


async def report_status(request: web.Request) -> web.Response:
    body = await _body(request)
    ref = _store(request).referrals.report(
        request.match_info["referral_id"], body["outcome"], body.get("date"), body.get("reason")
    )
    _queued(request)
    return _referral(request, ref, "referral.status")


def add_routes(router: web.UrlDispatcher, api: str) -> None:
    case = f"{api}/cases/{{case_id}}"
    out = f"{api}/referrals/outgoing"
    inc = f"{api}/referrals/incoming"
    routes: RouteTable = [
        ("GET", f"{api}/status", get_status),
        ("GET", f"{api}/directory", search_directory),
        ("GET", f"{api}/cases", list_cases),
        ("POST", f"{api}/cases", create_case),
        ("GET", case, get_case),
        ("PATCH", case, update_case),
        ("POST", f"{case}/close", close_case),
        ("GET", f"{case}/contacts", list_contacts),
        ("POST", f"{case}/contacts", add_contact),
        ("GET", f"{case}/agreements", list_agreements),
        ("POST", f"{case}/agreements", add_agreement),
        ("PUT", f"{case}/agreements/{{agreement_id}}", update_agreement),
        ("GET", f"{case}/consents", list_consents),
        ("POST", f"{case}/consents", record_consent),
        ("POST", f"{api}/consents/{{consent_id}}/withdraw", withdraw_consent),
        ("GET", out, _lister(OUT)),
        ("POST", out, create_referral),
        ("GET", f"{out}/{{referral_id}}", _getter(OUT)),
        ("POST", f"{out}/{{referral_id}}/withdraw", withdraw_referral),
        ("GET", inc, _lister(IN)),
        ("GET", f"{inc}/{{referral_id}}", _getter(IN)),
        ("POST", f"{inc}/{{referral_id}}/accept", accept_referral),
        ("POST", f"{inc}/{{referral_id}}/decline", decline_referral),
        ("POST", f"{inc}/{{referral_id}}/status", report_status),
    ]
    for method, path, handler in routes:
        router.add_route(method, path, handler)
