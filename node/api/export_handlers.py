"""The client's access export route of the local API.

* GET /api/v1/cases/{case_id}/export               JSON (machine-readable, portable)
* GET /api/v1/cases/{case_id}/export?format=html   one printable German document

Everything the node holds about the client of the case (node/storage/export.py),
read in one transaction together with its `case.export` audit row. An unknown
case is 404, an erased one 410 Gone; neither answer names anything but the id.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from node.api import keys
from node.api.export_page import HEADERS, render
from node.storage.export import audited_export
from node.storage.store import NodeStore


async def export_case(request: web.Request) -> web.Response:
    case_id = request.match_info["case_id"]
    app = request[keys.APP_NAME]
    actor = request.get(keys.ACTING_USER)
    settings = request.app[keys.SETTINGS]
    store = request.app[keys.STORE]

    def job(store: NodeStore) -> dict[str, Any]:
        return audited_export(
            store.ctx,
            store.access,
            case_id,
            app=app,
            retention_years=settings.retention.years,
            office_name=settings.name,
            actor=actor,
        )

    export = await store.run(job, store)
    if request.query.get("format") == "html":
        return web.Response(
            text=render(export, settings.name),
            content_type="text/html",
            charset="utf-8",
            headers=HEADERS,
        )
    return web.json_response(
        export,
        dumps=lambda v: json.dumps(v, ensure_ascii=False),
        headers={"Cache-Control": "no-store"},
    )


def add_routes(router: web.UrlDispatcher, api: str) -> None:
    router.add_get(f"{api}/cases/{{case_id}}/export", export_case)
