"""Route handlers. Requests reach them already checked against the spec.

Each handler that reads or changes a case writes one audit row (app, action,
ids) per case or referral it touches; a list writes all its rows in one
transaction. Handlers that queue a message notify the outbox listeners so the sync
worker uploads at once; none of them waits for the hub.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from node.api import keys, views
from node.domain.referral_states import IN, OUT, Direction, State
from node.storage.db import scrub, transaction
from node.storage.idempotency import IdempotentRequest
from node.storage.referrals import Referral
from node.storage.store import NodeStore

RouteTable = list[tuple[str, str, Any]]
T = TypeVar("T")


def _store(request: web.Request) -> NodeStore:
    return request.app[keys.STORE]


async def _db(
    request: web.Request,
    job: Callable[[NodeStore], T],
    *,
    atomic: bool = False,
    erases: bool = False,
    status: int | Callable[[T], int] = 200,
    body: Callable[[T], Any] | None = None,
) -> T:
    """Run `job` with the store on the database thread (node/storage/thread.py).

    A handler does all its database work in one job: one hop to the thread, and
    no other request's work interleaves. A handler that changes something runs
    it `atomic`: one transaction, so the change and its audit row commit
    together or not at all, and a failed audit write leaves no unaudited change
    behind for a retry to duplicate. (Reads write their audit rows in a
    transaction of their own, and only when there are rows to write.) A job that
    erased client data (`erases`) checkpoints the WAL after its commit, which
    cannot happen inside the transaction (node/storage/db.py `scrub`).

    A change sent with an Idempotency-Key (node/storage/idempotency.py) is
    checked against the keys seen before, and its answer kept, in the same
    transaction: `status` and `body` say what the handler answers with the
    job's result (its status code, its JSON; by default 200 and the result).
    """
    store = _store(request)
    seen = request.get(keys.IDEMPOTENCY)

    def run(store: NodeStore) -> T:
        if not atomic:
            return job(store)
        with transaction(store.db):
            if seen is not None:
                store.idempotency.check(seen)  # raises Replayed: nothing is done twice
            result = job(store)
            if seen is not None:
                _keep_answer(store, request, seen, result, status, body)
        if erases:
            scrub(store.db)
        return result

    return await store.run(run, store)


def _keep_answer(
    store: NodeStore,
    request: web.Request,
    seen: IdempotentRequest,
    result: T,
    status: int | Callable[[T], int],
    body: Callable[[T], Any] | None,
) -> None:
    """Store the answer to a change made with an Idempotency-Key, with the case it
    belongs to (so an erasure of the case takes the answer along)."""
    code = status(result) if callable(status) else status
    data = result if body is None else body(result)
    encoded = b"" if data is None else _dumps(data).encode("utf-8")
    case_id = request.match_info.get("case_id")
    if case_id is None and isinstance(data, dict):
        case_id = data.get("case_id") or (
            data.get("id") if request.path.endswith("/cases") else None
        )
    store.idempotency.record(seen, code, encoded, case_id)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    data = json.loads(raw)
    return data if isinstance(data, dict) else {}


def _app(request: web.Request) -> str:
    return request[keys.APP_NAME]


def _actor(request: web.Request) -> str | None:
    """The acting staff member's pseudonym (header X-Acting-User, checked by the
    auth middleware), recorded as `actor` on every audit row of the request."""
    return request.get(keys.ACTING_USER)


def _queued(request: web.Request) -> None:
    for listener in request.app[keys.OUTBOX_LISTENERS]:
        listener()


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


# ------------------------------------------------------------------ status etc.


async def get_status(request: web.Request) -> web.Response:
    years = request.app[keys.SETTINGS].retention.years
    return _json(await _db(request, lambda store: store.status(years)))


async def search_directory(request: web.Request) -> web.Response:
    q = request.query
    service, language, area = q.get("service"), q.get("language"), q.get("area")

    def job(store: NodeStore) -> dict[str, Any]:
        offices = store.network.search(service=service, language=language, area=area)
        return {"version": store.network.directory().version, "offices": offices}

    return _json(await _db(request, job))


# ------------------------------------------------------------------------ cases


async def list_cases(request: web.Request) -> web.Response:
    q = request.query
    status, limit, offset = q.get("status"), int(q.get("limit", 100)), int(q.get("offset", 0))
    app, actor = _app(request), _actor(request)

    def job(store: NodeStore) -> list[dict[str, Any]]:
        cases = store.cases.list_cases(status=status, limit=limit, offset=offset)
        store.access.audit_many(
            app, [("case.list", case["id"], None) for case in cases], actor=actor
        )
        return cases

    return _json({"cases": await _db(request, job)})


async def create_case(request: web.Request) -> web.Response:
    body = await _body(request)
    app, actor = _app(request), _actor(request)

    def job(store: NodeStore) -> dict[str, Any]:
        case_id = store.cases.create(body)
        store.access.audit(app, "case.create", case_id=case_id, actor=actor)
        return store.cases.get(case_id)

    return _json(await _db(request, job, atomic=True, status=201), 201)


def _case_job(
    request: web.Request, action: str, work: Callable[[NodeStore, str], T]
) -> Callable[[NodeStore], T]:
    """A job on the case in the path: `work(store, case_id)`, then one audit row."""
    case_id = request.match_info["case_id"]
    app, actor = _app(request), _actor(request)

    def job(store: NodeStore) -> T:
        result = work(store, case_id)
        store.access.audit(app, action, case_id=case_id, actor=actor)
        return result

    return job


async def get_case(request: web.Request) -> web.Response:
    job = _case_job(request, "case.read", lambda store, case_id: store.cases.get(case_id))
    return _json(await _db(request, job))


async def update_case(request: web.Request) -> web.Response:
    body = await _body(request)
    job = _case_job(
        request, "case.update", lambda store, case_id: store.cases.update(case_id, body)
    )
    return _json(await _db(request, job, atomic=True))


async def close_case(request: web.Request) -> web.Response:
    body = await _body(request)
    job = _case_job(
        request,
        "case.close",
        lambda store, case_id: store.cases.close(
            case_id, body["closure_reason"], body.get("closed")
        ),
    )
    return _json(await _db(request, job, atomic=True))


async def list_contacts(request: web.Request) -> web.Response:
    job = _case_job(request, "contact.list", lambda store, case_id: store.cases.contacts(case_id))
    return _json({"contacts": await _db(request, job)})


async def add_contact(request: web.Request) -> web.Response:
    body = await _body(request)
    job = _case_job(
        request, "contact.create", lambda store, case_id: store.cases.add_contact(case_id, body)
    )
    return _json(await _db(request, job, atomic=True, status=201), 201)


async def list_agreements(request: web.Request) -> web.Response:
    job = _case_job(
        request, "agreement.list", lambda store, case_id: store.cases.agreements(case_id)
    )
    return _json({"agreements": await _db(request, job)})


async def add_agreement(request: web.Request) -> web.Response:
    body = await _body(request)
    job = _case_job(
        request,
        "agreement.create",
        lambda store, case_id: store.cases.add_agreement(case_id, body["agreed"], body["goals"]),
    )
    return _json(await _db(request, job, atomic=True, status=201), 201)


async def update_agreement(request: web.Request) -> web.Response:
    body = await _body(request)
    agreement_id = request.match_info["agreement_id"]
    job = _case_job(
        request,
        "agreement.update",
        lambda store, case_id: store.cases.update_agreement(case_id, agreement_id, body["goals"]),
    )
    return _json(await _db(request, job, atomic=True))


# --------------------------------------------------------------------- consents


def _consents_of(store: NodeStore, case_id: str) -> list[dict[str, Any]]:
    store.cases.row(case_id)
    today = store.ctx.today()
    return [views.consent_view(c, today) for c in store.consents.for_case(case_id)]


async def list_consents(request: web.Request) -> web.Response:
    job = _case_job(request, "consent.list", _consents_of)
    return _json({"consents": await _db(request, job)})


async def record_consent(request: web.Request) -> web.Response:
    body = await _body(request)
    job = _case_job(
        request,
        "consent.create",
        lambda store, case_id: views.consent_view(
            store.consents.record(case_id, body), store.ctx.today()
        ),
    )
    return _json(await _db(request, job, atomic=True, status=201), 201)


async def withdraw_consent(request: web.Request) -> web.Response:
    """Withdraw a consent and the open referrals that rely on it (node/storage/lifecycle.py)."""
    body = await _body(request)
    consent_id = request.match_info["consent_id"]
    app, actor = _app(request), _actor(request)

    def job(store: NodeStore) -> tuple[dict[str, Any], bool]:
        consent, affected = store.lifecycle.withdraw_consent(consent_id, body.get("date"))
        store.access.audit_many(
            app,
            [("consent.withdraw", consent.case_id, None)]
            + [
                ("referral.withdraw", consent.case_id, ref.referral_id)
                for ref in affected
                if ref.state == State.WITHDRAWN
            ],
            actor=actor,
        )
        view = views.consent_view(consent, store.ctx.today())
        view |= {"referrals": [a.view() for a in affected]}
        return view, bool(affected)

    view, queued = await _db(request, job, atomic=True, body=lambda result: result[0])
    if queued:
        _queued(request)
    return _json(view)


# -------------------------------------------------------------------- referrals


def _referral_job(
    request: web.Request, action: str, work: Callable[[NodeStore], Referral]
) -> Callable[[NodeStore], dict[str, Any]]:
    """A job that changes or reads one referral, audits it and returns its view."""
    app, actor = _app(request), _actor(request)

    def job(store: NodeStore) -> dict[str, Any]:
        ref = work(store)
        store.access.audit(
            app, action, case_id=ref.case_id, referral_id=ref.referral_id, actor=actor
        )
        return views.view_of(store, ref)

    return job


async def create_referral(request: web.Request) -> web.Response:
    body = await _body(request)
    job = _referral_job(request, "referral.create", lambda store: store.referrals.create(body))
    view = await _db(request, job, atomic=True, status=201)
    _queued(request)
    return _json(view, 201)


def _lister(direction: Direction) -> Any:
    async def handler(request: web.Request) -> web.Response:
        state = request.query.get("state")
        app, actor = _app(request), _actor(request)

        def job(store: NodeStore) -> list[dict[str, Any]]:
            refs = store.referrals.list_referrals(direction, state=state)
            store.access.audit_many(
                app, [("referral.list", r.case_id, r.referral_id) for r in refs], actor=actor
            )
            return views.referral_views(store, refs)

        return _json({"referrals": await _db(request, job)})

    return handler


def _getter(direction: Direction) -> Any:
    async def handler(request: web.Request) -> web.Response:
        referral_id = request.match_info["referral_id"]
        job = _referral_job(
            request, "referral.read", lambda store: store.referrals.get(direction, referral_id)
        )
        return _json(await _db(request, job))

    return handler


async def _change_referral(
    request: web.Request,
    action: str,
    work: Callable[[NodeStore, str, dict[str, Any]], Referral],
    *,
    erases: bool = False,
) -> web.Response:
    """Change one referral in a way that queues a message, then wake the sync worker."""
    body = await _body(request)
    referral_id = request.match_info["referral_id"]
    job = _referral_job(request, action, lambda s: work(s, referral_id, body))
    view = await _db(request, job, atomic=True, erases=erases)
    _queued(request)
    return _json(view)


async def withdraw_referral(request: web.Request) -> web.Response:
    return await _change_referral(
        request,
        "referral.withdraw",
        lambda store, rid, body: store.referrals.withdraw(rid, body["reason"]),
    )


async def accept_referral(request: web.Request) -> web.Response:
    return await _change_referral(
        request, "referral.accept", lambda store, rid, body: store.referrals.accept(rid, body)
    )


async def decline_referral(request: web.Request) -> web.Response:
    return await _change_referral(
        request,
        "referral.decline",
        lambda store, rid, body: store.referrals.decline(rid, body["reason"], body.get("note")),
        erases=True,  # the declined client's data is deleted
    )


async def report_status(request: web.Request) -> web.Response:
    return await _change_referral(
        request,
        "referral.status",
        lambda store, rid, body: store.referrals.report(
            rid, body["outcome"], body.get("date"), body.get("reason")
        ),
    )


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


# The helpers other route modules share (node/api/erasure_handlers.py).
acting_user = _actor
run_db = _db
notify_outbox = _queued
json_response = _json
