"""Retention routes of the local API (docs/client-rights.md, "Retention").

* GET    /api/v1/retention/due           closed cases erased within the next 30
                                         days (or due and not yet erased), with
                                         their erasure date and hold
* PUT    /api/v1/cases/{id}/hold {reason} put a case on hold: 201 new, 200 the
                                         reason of an existing hold replaced
* DELETE /api/v1/cases/{id}/hold          release the hold (204, also when there
                                         was none)

Each writes its audit rows (`retention.due` per listed case, `retention.hold`,
`retention.release`) in the same transaction as the change. The erasure itself
is the retention job's (node/jobs/retention.py).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from node.api import handlers, keys
from node.storage.retention import DUE_WITHIN_DAYS
from node.storage.store import NodeStore

DUE = "retention.due"
HOLD = "retention.hold"
RELEASE = "retention.release"


def _years(request: web.Request) -> int:
    return request.app[keys.SETTINGS].retention.years


async def list_due(request: web.Request) -> web.Response:
    years = _years(request)
    app, actor = request[keys.APP_NAME], request.get(keys.ACTING_USER)

    def job(store: NodeStore) -> dict[str, Any]:
        today = store.ctx.today()
        due = store.retention.due(today, years, DUE_WITHIN_DAYS)
        # One row per listed case; an empty list is recorded once, without a case.
        rows: list[tuple[str, str | None, str | None]] = [(DUE, d.case_id, None) for d in due]
        store.access.audit_many(app, rows or [(DUE, None, None)], actor=actor)
        return {
            "today": today,
            "within_days": DUE_WITHIN_DAYS,
            "years": years,
            "cases": [d.view() for d in due],
        }

    return handlers.json_response(await handlers.run_db(request, job, atomic=True))


async def put_hold(request: web.Request) -> web.Response:
    case_id = request.match_info["case_id"]
    body = json.loads(await request.read())  # an object with a known reason (the spec)
    reason = body["reason"]
    app, actor = request[keys.APP_NAME], request.get(keys.ACTING_USER)

    def job(store: NodeStore) -> tuple[dict[str, Any], bool]:
        hold, created = store.retention.hold(case_id, reason)
        store.access.audit(app, HOLD, case_id=case_id, actor=actor)
        return hold.view(), created

    view, created = await handlers.run_db(
        request,
        job,
        atomic=True,
        status=lambda result: 201 if result[1] else 200,
        body=lambda result: result[0],
    )
    return handlers.json_response(view, 201 if created else 200)


async def delete_hold(request: web.Request) -> web.Response:
    case_id = request.match_info["case_id"]
    app, actor = request[keys.APP_NAME], request.get(keys.ACTING_USER)

    def job(store: NodeStore) -> None:
        store.retention.release(case_id)
        store.access.audit(app, RELEASE, case_id=case_id, actor=actor)

    await handlers.run_db(request, job, atomic=True, status=204, body=lambda _: None)
    return web.Response(status=204)


def add_routes(router: web.UrlDispatcher, api: str) -> None:
    router.add_route("GET", f"{api}/retention/due", list_due)
    router.add_route("PUT", f"{api}/cases/{{case_id}}/hold", put_hold)
    router.add_route("DELETE", f"{api}/cases/{{case_id}}/hold", delete_hold)
