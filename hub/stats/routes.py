"""`add_stats(app)`: the statistics extension of the hub (`create_app(extensions=[...])`).

Adds the node-facing `POST /v1/stats`, the coordinator API under
`/coordinator/v1/` and the dashboard under `/dashboard`, and gives every
coordinator-facing response headers that keep the browser from loading
anything from elsewhere or caching what a coordinator saw.
"""

from __future__ import annotations

from aiohttp import web

from hub.context import SETTINGS
from hub.stats.api import PREFIX, add_api_routes
from hub.stats.autopublish import autopublish_ctx
from hub.stats.dashboard import add_dashboard_routes
from hub.stats.submit import submit_report
from hub.stats.trend_api import add_trend_routes
from hub.stats.view import DISCLOSURE, policy

COORDINATOR_PREFIXES = (PREFIX + "/", "/dashboard")
# No external origin at all: the stylesheet comes from the hub, charts are inline
# SVG, and there is no script.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # No referrer leaves for other sites; same-origin keeps the Origin header of
    # the hub's own form posts, which the login CSRF check reads.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def is_coordinator_path(path: str) -> bool:
    return path == "/dashboard" or path.startswith(COORDINATOR_PREFIXES)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if not is_coordinator_path(request.path):
        return
    response.headers.update(SECURITY_HEADERS)
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"


def add_stats(app: web.Application) -> None:
    app[DISCLOSURE] = policy(app[SETTINGS])
    app.router.add_post("/v1/stats", submit_report)
    add_api_routes(app)
    add_trend_routes(app)
    add_dashboard_routes(app)
    app.on_response_prepare.append(_security_headers)
    app.cleanup_ctx.append(autopublish_ctx)
