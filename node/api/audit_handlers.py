"""GET /api/v1/audit: the audit log, oldest first, paged by seq.

The entries hold ids, codes and the apps' pseudonymous staff ids, never
personal data. Reading the log is itself audited (`audit.read`, with the case
asked for), in the same transaction as the read.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.api import handlers, keys
from node.storage.store import NodeStore

ACTION = "audit.read"
DEFAULT_LIMIT = 100


async def list_audit(request: web.Request) -> web.Response:
    q = request.query  # checked against the spec (limit 1..1000, after >= 0)
    case_id = q.get("case")
    limit = int(q.get("limit", DEFAULT_LIMIT))
    after = int(q.get("after", 0))
    app, actor = request[keys.APP_NAME], handlers.acting_user(request)

    def job(store: NodeStore) -> dict[str, Any]:
        entries = store.access.chain.entries(case_id=case_id, after=after, limit=limit)
        store.access.audit(app, ACTION, case_id=case_id, actor=actor)
        more = len(entries) == limit
        return {"entries": entries, "next_after": entries[-1]["seq"] if more else None}

    return handlers.json_response(await handlers.run_db(request, job, atomic=True))


def add_routes(router: web.UrlDispatcher, api: str) -> None:
    router.add_get(f"{api}/audit", list_audit)
