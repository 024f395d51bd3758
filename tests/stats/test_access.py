"""Coordinator access: tokens, sessions, and the organisation limit on every route."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import aiohttp

from hub.stats.routes import is_coordinator_path
from tests.hub.client import problem_kind
from tests.hub.engines import hub_db
from tests.stats.hubside import OFFICE_A, OFFICE_B, PERIOD, StatsHub, published, three_offices

Q = f"period={PERIOD}"
# Every coordinator-facing route with the requests that exercise it. The test below
# fails when a route is added without being listed here.
PROBES: dict[tuple[str, str], list[str]] = {
    ("GET", "/coordinator/v1/periods"): ["", "?format=csv"],
    ("GET", "/coordinator/v1/tables"): [
        f"?{Q}&measure=cases_active",
        f"?{Q}&measure=cases_active&rows=office",
        f"?{Q}&measure=cases_active&rows=organisation&cols=residence",
        f"?{Q}&measure=cases_active&rows=office&cols=topic&format=csv",
        f"?{Q}&measure=referrals_sent&rows=target",
        f"?{Q}&measure=cases_active&rows=office&cols=residence&format=csv-de",
    ],
    ("GET", "/coordinator/v1/overview"): [f"?{Q}", f"?{Q}&format=csv", f"?{Q}&format=csv-de"],
    ("GET", "/coordinator/v1/completeness"): [f"?{Q}", f"?{Q}&format=csv", f"?{Q}&format=csv-de"],
    ("GET", "/coordinator/v1/offices"): ["", "?format=csv", "?format=csv-de"],
    ("GET", "/coordinator/v1/disclosure"): [""],
    ("GET", "/coordinator/v1/trends"): [f"?{Q}", f"?{Q}&format=csv-de"],
    ("GET", "/dashboard"): ["", f"?{Q}"],
    ("GET", "/dashboard/trends"): ["", f"?{Q}"],
    ("GET", "/dashboard/areas"): ["", f"?{Q}"],
    ("GET", "/dashboard/referrals"): ["", f"?{Q}"],
    ("GET", "/dashboard/table"): ["", f"?{Q}"],
}
# Routes anyone may call: the login form, the login itself, stylesheet and icon, logout.
PUBLIC = {
    ("GET", "/dashboard/login"),
    ("POST", "/dashboard/login"),
    ("GET", "/dashboard/dashboard.css"),
    ("GET", "/dashboard/favicon.svg"),
    ("POST", "/dashboard/logout"),
}


def coordinator_routes(hub: StatsHub) -> set[tuple[str, str]]:
    out = set()
    for route in hub.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if is_coordinator_path(path) and route.method != "HEAD":
            out.add((route.method, path))
    return out


def test_every_coordinator_route_is_probed(stats_hub: StatsHub) -> None:
    """The router's coordinator routes are exactly the probed ones plus the public ones."""
    assert coordinator_routes(stats_hub) == set(PROBES) | PUBLIC


async def test_unauthenticated_requests_are_refused(stats_hub: StatsHub) -> None:
    """No credentials or a wrong token: API 401 problem, dashboard sends to the login page."""
    await three_offices(stats_hub)
    for headers in ({}, {"Authorization": "Bearer mbeh_wrong"}, {"Authorization": "Basic x"}):
        for (method, path), queries in PROBES.items():
            for query in queries:
                resp = await stats_hub.http.request(
                    method, path + query, headers=headers, allow_redirects=False
                )
                if path.startswith("/dashboard"):
                    assert resp.status == 303, path
                    # The login page is told where to lead back to (the path asked for).
                    expected = "/dashboard/login?" + urlencode({"next": path + query})
                    assert resp.headers["Location"] == expected
                else:
                    assert resp.status == 401, path + query
                    assert problem_kind(await resp.json()) == "unauthorized"


async def _login(hub: StatsHub, token: str) -> aiohttp.ClientResponse:
    return await hub.http.request(
        "POST", "/dashboard/login", data={"token": token}, allow_redirects=False
    )


async def test_org_limited_coordinator_sees_only_its_organisation(stats_hub: StatsHub) -> None:
    """Through every route, a Caritas coordinator never sees Diakonie's office or its data."""
    _, _, c = await three_offices(stats_hub)
    token = stats_hub.token("Caritas")
    assert (await _login(stats_hub, token)).status == 303  # the session cookie for /dashboard
    secrets_of_c = (c.node_id, "Diakonie", "Köln-Nord")
    for (method, path), queries in PROBES.items():
        for query in queries:
            resp = await stats_hub.http.request(
                method, path + query, headers={"Authorization": f"Bearer {token}"}
            )
            assert resp.status == 200, path + query
            text = await resp.text()
            for secret in secrets_of_c:
                assert secret not in text, (path + query, secret)
    doc = await stats_hub.get_json(f"/coordinator/v1/overview?{Q}", token)
    totals = {t["measure"]: t["total"]["value"] for t in doc["tables"] if t["rows"] is None}
    # Caritas' offices only, without Diakonie's 9 active cases
    assert totals["cases_active"] == published((OFFICE_A, OFFICE_B), ("cases_active", ()))
    assert totals["referrals_sent"] == 0  # only Diakonie referred anyone
    for scope in (f"office:{c.node_id}", "organisation:Diakonie"):
        resp = await stats_hub.http.request(
            "GET",
            f"/coordinator/v1/tables?{Q}&measure=cases_active&scope={scope}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status == 404


async def test_region_coordinator_may_scope_to_an_office(stats_hub: StatsHub) -> None:
    """An unlimited coordinator may ask for one office's table (scope office:ID)."""
    a, _, _ = await three_offices(stats_hub)
    token = stats_hub.token()
    doc = await stats_hub.get_json(
        f"/coordinator/v1/tables?{Q}&measure=cases_active&scope=office:{a.node_id}", token
    )
    assert (doc["scope"], doc["total"]["value"], doc["reporting_offices"]) == (
        {"level": "office", "key": a.node_id},
        published((OFFICE_A,), ("cases_active", ())),
        1,
    )


async def test_session_cookie_is_httponly_strict_and_stored_hashed(stats_hub: StatsHub) -> None:
    """Login sets an HttpOnly SameSite=Strict cookie; the hub keeps only its SHA-256."""
    token = stats_hub.token()
    resp = await _login(stats_hub, token)
    assert resp.status == 303
    cookie = resp.cookies["mbe_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert not cookie["secure"]  # public_url is http in this test; https would set it
    db = hub_db(stats_hub.settings)
    try:
        stored = [bytes(r[0]) for r in db.execute("SELECT id_hash FROM coordinator_sessions")]
    finally:
        db.close()
    assert stored == [hashlib.sha256(cookie.value.encode()).digest()]
    if stats_hub.settings.database.postgres_url is None:
        assert cookie.value.encode() not in stats_hub.settings.db_path.read_bytes()


async def test_sessions_end_at_logout_expiry_and_revocation(stats_hub: StatsHub) -> None:
    """After logout, after session_ttl, or once the token is revoked, the dashboard is closed."""
    token = stats_hub.token()

    async def dashboard_status() -> int:
        resp = await stats_hub.http.request("GET", "/dashboard", allow_redirects=False)
        return resp.status

    await _login(stats_hub, token)
    assert await dashboard_status() == 200
    resp = await stats_hub.http.request("POST", "/dashboard/logout", allow_redirects=False)
    assert resp.status == 303
    assert await dashboard_status() == 303

    await _login(stats_hub, token)
    stats_hub.clock.advance(stats_hub.settings.stats.session_ttl + 1)
    assert await dashboard_status() == 303

    await _login(stats_hub, token)
    assert await dashboard_status() == 200
    db = hub_db(stats_hub.settings)
    try:
        db.execute("UPDATE tokens SET revoked = 1")
    finally:
        db.close()
    assert await dashboard_status() == 303


async def test_wrong_token_at_login_shows_the_form_again(stats_hub: StatsHub) -> None:
    """A wrong token answers 401 with the German login form and sets no cookie."""
    resp = await _login(stats_hub, "mbeh_not-a-token")
    assert resp.status == 401
    assert "mbe_session" not in resp.cookies
    assert "ungültig" in await resp.text()


async def test_cross_site_login_and_logout_are_refused(stats_hub: StatsHub) -> None:
    """A login or logout POST sent by another site is 403 and changes no session."""
    token = stats_hub.token()
    origin = str((await stats_hub.http.request("GET", "/dashboard/login")).url.origin())
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site", "Origin": origin},
        {"Sec-Fetch-Site": "same-site"},
    ):
        resp = await stats_hub.http.request(
            "POST",
            "/dashboard/login",
            data={"token": token},
            headers=headers,
            allow_redirects=False,
        )
        assert resp.status == 403, headers
        assert "mbe_session" not in resp.cookies
        assert "anderen Website" in await resp.text()
    db = hub_db(stats_hub.settings)
    try:
        assert db.execute("SELECT count(*) FROM coordinator_sessions").fetchone()[0] == 0
    finally:
        db.close()
    # The hub's own pages (same origin) still log in; a cross-site logout leaves the session.
    resp = await stats_hub.http.request(
        "POST",
        "/dashboard/login",
        data={"token": token},
        headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"},
        allow_redirects=False,
    )
    assert resp.status == 303
    resp = await stats_hub.http.request(
        "POST",
        "/dashboard/logout",
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert resp.status == 403
    page = await stats_hub.http.request("GET", "/dashboard", allow_redirects=False)
    assert page.status == 200
    configured = stats_hub.settings.public_url  # behind the proxy the browser uses this origin
    resp = await stats_hub.http.request(
        "POST", "/dashboard/logout", headers={"Origin": configured}, allow_redirects=False
    )
    assert resp.status == 303
