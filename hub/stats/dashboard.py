"""The coordinator dashboard: login, one page per period, logout, its stylesheet.

Routes: GET /dashboard[?period=P], GET|POST /dashboard/login, POST
/dashboard/logout, GET /dashboard/dashboard.css. A request without a valid
session is sent to the login page. A POST that a browser sent from another
site is refused (403) before anything changes: otherwise any web page could log
a coordinator into an attacker's session or out of their own. The CSV download links point at the
coordinator API, which accepts the same session cookie.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit

from aiohttp import web

from hub.context import DB, DEPS, SETTINGS
from hub.stats import area_view, pages, referral_view, table_view, trend_view, view
from hub.stats.access import (
    COOKIE,
    clear_session_cookie,
    end_session,
    new_session_id,
    set_session_cookie,
    start_session,
    usable_secret,
)
from hub.stats.frame import LOGIN, Frame, add_view, html, render, safe_next, see_other

MAX_TOKEN = 200
# "widerrufen" is what `mbe-hub token revoke` does; "gesperrt" would read like a
# number held back for confidentiality.
REFUSED_TEXT = "Dieser Token ist ungültig, widerrufen oder nicht für die Koordination."


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_site(request: web.Request) -> bool:
    """Whether a browser sent this request from another site (login CSRF).

    Browsers say so in `Sec-Fetch-Site`; older ones at least send `Origin` with
    a POST. The hub's own origin is its `public_url` (behind the TLS proxy) or
    the address the request came to. A request with neither header is not from
    a browser form and cannot carry a victim's cookie by accident.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        # Trusted over Origin: a browser may send "Origin: null" for its own forms.
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    own = {_origin(request.app[SETTINGS].public_url), _origin(str(request.url))}
    return origin.lower() not in own


def _refused_cross_site(back: tuple[str, str]) -> web.Response:
    return html(
        pages.message_page(
            "Diese Anfrage kam von einer anderen Website und wurde abgelehnt.", back
        ),
        403,
    )


async def show_login(request: web.Request) -> web.Response:
    after = safe_next(request.query.get("next"))
    return html(pages.login_page(request.app[SETTINGS].region, after=after))


async def login(request: web.Request) -> web.StreamResponse:
    region = request.app[SETTINGS].region
    if cross_site(request):
        # Nothing changed: the way on is this hub's own login form.
        return _refused_cross_site(pages.BACK_TO_LOGIN)
    try:
        form = await request.post()
    except ValueError:
        # A broken body (multipart without a name or boundary, bytes that are
        # not UTF-8) is the caller's mistake: show the form again, do not 500.
        return html(pages.login_page(region, "Bitte einen Zugangs-Token eingeben."), 400)
    raw_next = form.get("next")
    after = safe_next(raw_next if isinstance(raw_next, str) else None)
    token = form.get("token")
    if not isinstance(token, str) or not 0 < len(token.strip()) <= MAX_TOKEN:
        return html(pages.login_page(region, "Bitte einen Zugangs-Token eingeben.", after), 400)
    if not usable_secret(token.strip(), MAX_TOKEN):
        return html(pages.login_page(region, REFUSED_TEXT, after), 401)
    session_id = new_session_id(request)
    app = request.app
    who = await app[DB].run(
        start_session,
        token.strip(),
        session_id,
        app[DEPS].clock.now(),
        app[SETTINGS].stats.session_ttl,
    )
    if who is None:
        return html(pages.login_page(region, REFUSED_TEXT, after), 401)
    response = see_other(after)
    set_session_cookie(request, response, session_id)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    if cross_site(request):
        # The session is still open: back to the dashboard, where "Abmelden" works.
        return _refused_cross_site(pages.BACK_TO_DASHBOARD)
    session_id = request.cookies.get(COOKIE)
    if session_id is not None and usable_secret(session_id, 100):
        await request.app[DB].run(end_session, session_id)
    response = see_other(LOGIN)
    clear_session_cookie(request, response)
    return response


async def overview_view(request: web.Request, frame: Frame) -> str:
    """Überblick: a period's key figures, two charts, completeness and the offices."""
    who, period = frame.who, frame.period
    published = await view.publication_of(request, period)
    overview = await view.overview(request, who, period) if published is not None else None
    page = pages.Page(
        region=frame.region,
        org=who.org,
        period=period.id,
        periods=frame.periods,
        overview=overview,
        completeness=await view.completeness(request, who, period),
        deadline=period.deadline(request.app[SETTINGS].stats.grace_days).strftime("%d.%m.%Y"),
        sites=await view.sites_for(request, who),
        policy=request.app[view.DISCLOSURE],
        late_revisions=await view.late_count(request, period, published) if published else 0,
    )
    return render("dashboard.html", frame, **pages.overview_context(page))


ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#1c5d99"/>'
    '<rect x="3" y="8" width="2.5" height="5" fill="#fff"/>'
    '<rect x="6.75" y="5" width="2.5" height="8" fill="#fff"/>'
    '<rect x="10.5" y="3" width="2.5" height="10" fill="#fff"/></svg>'
)


async def icon(request: web.Request) -> web.Response:
    return web.Response(
        text=ICON,
        content_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


async def stylesheet(request: web.Request) -> web.Response:
    css = resources.files("hub.stats").joinpath("dashboard.css").read_text(encoding="utf-8")
    return web.Response(
        text=css,
        content_type="text/css",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


def add_dashboard_routes(app: web.Application) -> None:
    add_view(app, "overview", overview_view)
    add_view(app, "trends", trend_view.page)
    add_view(app, "areas", area_view.page)
    add_view(app, "referrals", referral_view.page)
    add_view(app, "table", table_view.page)
    app.router.add_get(LOGIN, show_login)
    app.router.add_post(LOGIN, login)
    app.router.add_post("/dashboard/logout", logout)
    app.router.add_get(pages.CSS_PATH, stylesheet)
    app.router.add_get(pages.ICON_PATH, icon)
