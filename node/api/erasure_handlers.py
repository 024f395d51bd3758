"""Routes of erasure (docs/client-rights.md, "Erasure"): erase a case, follow
the notices to the offices that received its data, settle flagged cases.

`DELETE /api/v1/cases/{id}?reason=CODE` erases in one transaction with its
audit row and the statistics guard (node/stats/erasure.py), checkpoints the
WAL after the commit, and wakes the sync worker for the notices.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from node.api import handlers, keys
from node.stats.erasure import erase_keeping_statistics
from node.storage.store import NodeStore


async def erase_case(request: web.Request) -> web.Response:
    case_id = request.match_info["case_id"]
    reason = request.query["reason"]  # required and a known code (checked by the spec)
    app = request[keys.APP_NAME]
    actor = request.get(keys.ACTING_USER)

    def job(store: NodeStore) -> dict[str, Any]:
        result = erase_keeping_statistics(
            store.ctx,
            lambda: store.erasure.erase_case(case_id, reason, app=app, actor=actor),
            case_ids=[case_id],
        )
        return result.view()

    view = await handlers.run_db(request, job, atomic=True, erases=True)
    handlers.notify_outbox(request)
    return handlers.json_response(view)


def _with_document(store: NodeStore, notice: dict[str, Any]) -> dict[str, Any]:
    if notice["receipt"] is None:
        return notice
    doc = store.erasure.receipt_document(notice["referral_id"])
    receipt = notice["receipt"] | {"document": base64.b64encode(doc).decode("ascii")}
    return notice | {"receipt": receipt}


async def list_erasures(request: web.Request) -> web.Response:
    """Notices sent (with their signed receipts) and requests received."""

    def job(store: NodeStore) -> dict[str, Any]:
        notices = [_with_document(store, n) for n in store.erasure.notices()]
        return {"notices": notices, "requests": store.erasure.requests()}

    return handlers.json_response(await handlers.run_db(request, job))


async def settle_request(request: web.Request) -> web.Response:
    referral_id = request.match_info["referral_id"]
    app = request[keys.APP_NAME]
    actor = request.get(keys.ACTING_USER)

    def job(store: NodeStore) -> dict[str, Any]:
        view = store.erasure.settle(referral_id)
        store.erasure.audit(app, actor, "erasure.settle", view["case_id"], referral_id)
        return view

    return handlers.json_response(await handlers.run_db(request, job, atomic=True))


def add_routes(router: web.UrlDispatcher, api: str) -> None:
    router.add_route("DELETE", f"{api}/cases/{{case_id}}", erase_case)
    router.add_route("GET", f"{api}/erasures", list_erasures)
    router.add_route("POST", f"{api}/erasure-requests/{{referral_id}}/settle", settle_request)
