"""Statistics routes of the local API, and the cleanup_ctx functions that serve them.

* GET  /api/v1/stats?period=P         preview: the counts the office would send
* POST /api/v1/stats/submit {period}  seal and send now (200 submitted/unchanged,
                                      202 queued when the hub is unreachable,
                                      422 problem when the hub refused it)
* GET  /api/v1/stats/submissions      what was sent, per period and revision

`stats_ctx` (in create_app, after the store) builds the `StatsService`;
automatic submission is a background job (node/jobs/stats_scheduler.py), woken
through `keys.STATS_QUEUED_LISTENERS` when a manual submission had to be queued.
Tests put a fake uplink into `STATS_CONNECT` before the app starts.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from node.api import keys
from node.stats.errors import HubRefusedReport
from node.stats.service import QUEUED, Connect, StatsService, hub_connector
from node.storage.stats_ledger import REJECTED

STATS = web.AppKey("mbe_node_stats", StatsService)
STATS_CONNECT: web.AppKey[Connect] = web.AppKey("mbe_node_stats_connect")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


async def _audit(request: web.Request, action: str) -> None:
    store = request.app[keys.STORE]
    app, actor = request[keys.APP_NAME], request.get(keys.ACTING_USER)
    await store.run(store.access.audit, app, action, case_id=None, actor=actor)


async def preview_stats(request: web.Request) -> web.Response:
    preview = await request.app[STATS].preview(request.query["period"])
    await _audit(request, "stats.preview")
    return _json(preview)


async def submit_stats(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    outcome = await request.app[STATS].submit(body["period"])
    await _audit(request, "stats.submit")
    if outcome.state == REJECTED:
        raise HubRefusedReport(outcome.detail or f"the hub refused the report for {outcome.period}")
    if outcome.state == QUEUED:
        for listener in request.app[keys.STATS_QUEUED_LISTENERS]:
            listener()
        return _json(outcome.to_map(), status=202)
    return _json(outcome.to_map())


async def list_submissions(request: web.Request) -> web.Response:
    ledger = request.app[STATS].ledger
    period = request.query.get("period")
    views = await request.app[keys.STORE].run(
        lambda: [s.view() for s in ledger.submissions(period)]
    )
    return _json({"submissions": views})


def add_routes(router: web.UrlDispatcher, api: str) -> None:
    router.add_get(f"{api}/stats", preview_stats)
    router.add_post(f"{api}/stats/submit", submit_stats)
    router.add_get(f"{api}/stats/submissions", list_submissions)


async def stats_ctx(app: web.Application) -> AsyncIterator[None]:
    """The statistics service over the store opened by store_ctx."""
    settings = app[keys.SETTINGS]
    store = app[keys.STORE]
    connect = app.get(STATS_CONNECT) or hub_connector(
        app[keys.KEYS], settings.sync.request_timeout, app[keys.DEPS]
    )
    app[STATS] = StatsService(
        store.ctx,
        settings.stats,
        connect=connect,
        load_enrollment=store.network.load_enrollment,
        run=store.run,
    )
    yield
