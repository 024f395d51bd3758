"""Hostile requests to the dashboard's views and login: every answer is a German page or
a redirect to the hub's own dashboard, never a server error or a header it cannot send."""

from __future__ import annotations

import re
from html import unescape

import pytest
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from hub.app import SERVER_LIMITS, create_app
from hub.settings import HubSettings
from hub.stats.frame import safe_next
from hub.stats.routes import add_stats
from tests.clocks import clocked
from tests.hub.conftest import FakeClock
from tests.stats.hubside import StatsHub

pytestmark = pytest.mark.one_engine  # tests/conftest.py

# What a `next` may carry once its percent-escapes are decoded (a browser's form
# sends them decoded): control characters, text that is not UTF-8, line separators.
HOSTILE_NEXT_QUERIES = (
    "a=\x00",
    "x=\x7f",
    "x=\x0b\x0c",
    "x=\x1b[31m",
    "a=\u2028\u0085",
    "a=\ufffd",
    "period=2026-11&x=" + "y" * 6000,
)


@pytest.mark.parametrize("query", HOSTILE_NEXT_QUERIES)
def test_safe_next_keeps_only_ascii_view_links(query: str) -> None:
    """Any `next` query becomes ASCII without control characters, on a view's path."""
    for path in ("/dashboard", "/dashboard/table"):
        after = safe_next(f"{path}?{query}")
        assert after.startswith(path)
        assert after.isascii()
        assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in after)
        assert len(after) <= 2100


async def test_login_with_control_characters_in_next_redirects(stats_hub: StatsHub) -> None:
    """A login whose `next` query holds control or non-ASCII characters still logs in
    and sends the coordinator to the view, never a 500 or a dropped connection."""
    for query in HOSTILE_NEXT_QUERIES:
        resp = await stats_hub.http.request(
            "POST",
            "/dashboard/login",
            data={"token": stats_hub.token(), "next": f"/dashboard/table?{query}"},
            allow_redirects=False,
        )
        assert resp.status == 303, query
        location = resp.headers["Location"]
        assert location.startswith("/dashboard/table"), location
        assert location.isascii()


async def test_login_form_keeps_only_a_clean_next(stats_hub: StatsHub) -> None:
    """The login form's hidden `next` holds no control character taken from the URL."""
    resp = await stats_hub.http.request(
        "GET", "/dashboard/login?next=%2Fdashboard%3Fa%3D%2500%26b%3D%251b"
    )
    assert resp.status == 200
    found = re.search(r'name="next" value="([^"]*)"', await resp.text())
    assert found is not None
    assert unescape(found.group(1)) == "/dashboard?a=%00&b=%1B"


# --- hostile query strings on every view and API route -------------------------------

VIEWS = ("/dashboard", "/dashboard/trends", "/dashboard/areas", "/dashboard/referrals")
TABLE_VIEW = "/dashboard/table"
API = (
    "/coordinator/v1/tables?measure=cases_new&",
    "/coordinator/v1/overview?",
    "/coordinator/v1/completeness?",
    "/coordinator/v1/trends?",
)
# Period values that are no period, or lie at the edge of the years a period may have.
BAD_PERIODS = ("", "0000", "2026-13", "2026-Q5", "2026-00", "1999-12", "3000-01", "%ff", "%00")
EDGE_PERIODS = ("2000", "2000-01", "2000-Q1", "2999", "2999-12", "2999-Q4")
ODD = ("", "%ff", "%C3%28", "a%00b", "%0d%0a", "<script>", "{{7*7}}", "x" * 4000, ":", "area:")


async def hostile_offices(hub: StatsHub) -> None:
    """Caritas offices in Nord, a Diakonie office in the area only Diakonie has; published."""
    from tests.stats.hubside import PUBLISHED, make_report
    from tests.stats.test_referral_view import office
    from tests.stats.test_table_view import A, B, C

    for (name, org, area), cells in zip(
        (
            ("Caritas Mitte", "Caritas", "Nord"),
            ("Caritas Porz", "Caritas", "Nord"),
            ("Diakonie Verborgen", "Diakonie", "Geheimgebiet"),
        ),
        (A, B, C),
        strict=True,
    ):
        resp = await hub.submit(await office(hub, name, org, area), make_report(cells))
        assert resp.status == 200
    hub.clock.t = PUBLISHED


async def fetch(hub: StatsHub, url: str, org: str | None = None) -> tuple[int, str, str]:
    resp = await hub.http.request("GET", url, headers={"Authorization": f"Bearer {hub.token(org)}"})
    return resp.status, resp.content_type, await resp.text(errors="replace")


async def test_bad_query_values_get_german_pages(stats_hub: StatsHub) -> None:
    """Every view answers a bad period, scope, area, measure, rows or cols with a German
    4xx page (never 500, never the API's JSON), and edge periods with a page."""
    await hostile_offices(stats_hub)
    urls = [f"{v}?period={p}" for v in (*VIEWS, TABLE_VIEW) for p in BAD_PERIODS]
    for key in ("scope", "area", "measure", "rows", "cols"):
        urls += [f"{v}?period=2026-11&{key}={x}" for v in (*VIEWS, TABLE_VIEW) for x in ODD]
    urls += [f"{TABLE_VIEW}?period=2026-11&measure=cases_new&rows=office&cols={x}" for x in ODD]
    for url in urls:
        status, ctype, body = await fetch(stats_hub, url)
        assert status < 500, url
        assert ctype == "text/html", url
        if status >= 400:
            assert 'lang="de"' in body, url
            assert "Traceback" not in body, url
    for url in (f"{v}?period={p}" for v in (*VIEWS, TABLE_VIEW) for p in EDGE_PERIODS):
        status, ctype, _ = await fetch(stats_hub, url)
        assert (status, ctype) == (200, "text/html"), url


async def test_bad_query_values_get_problem_json(stats_hub: StatsHub) -> None:
    """Every API route answers bad values with a 4xx problem (RFC 9457), edge periods
    in every format without a server error."""
    await hostile_offices(stats_hub)
    urls = [f"{a}period={p}" for a in API for p in BAD_PERIODS]
    urls += [f"{a}period=2026-11&format={x}" for a in API for x in ODD]
    urls += [f"{API[0]}period=2026-11&scope={x}" for x in ODD]
    # An empty rows or cols is no breakdown (the 0-D table), so not among these.
    urls += [f"{API[0]}period=2026-11&{k}={x}" for k in ("rows", "cols") for x in ODD[1:]]
    for url in urls:
        status, ctype, body = await fetch(stats_hub, url)
        assert 400 <= status < 500, url
        assert ctype == "application/problem+json", url
        assert "Traceback" not in body
    for a in API[1:]:
        for p in EDGE_PERIODS:
            for fmt in ("json", "csv-de", "xlsx"):
                status, _, _ = await fetch(stats_hub, f"{a}period={p}&format={fmt}")
                assert status in (200, 409), (a, p, fmt)


async def test_organisation_coordinator_never_sees_another_organisations_area(
    stats_hub: StatsHub,
) -> None:
    """A Caritas coordinator finds no trace of the area only a Diakonie office is in:
    no view, option list or download names it, and asking for it is a 404."""
    await hostile_offices(stats_hub)
    urls = [f"{v}?period=2026-11" for v in (*VIEWS, TABLE_VIEW)]
    urls += [f"{TABLE_VIEW}?period=2026-11&measure=cases_new&rows={r}" for r in ("area", "office")]
    urls += [
        f"/coordinator/v1/tables?period=2026-11&measure=cases_new&rows={r}&format={f}"
        for r in ("area", "office", "organisation")
        for f in ("json", "csv", "csv-de")
    ]
    urls += [f"/coordinator/v1/{e}?period=2026-11&format=csv-de" for e in ("overview", "offices")]
    for url in urls:
        status, _, body = await fetch(stats_hub, url, "Caritas")
        assert status == 200, url
        assert "Geheimgebiet" not in body, url
        assert "Verborgen" not in body, url
    for url in (
        "/dashboard/areas?period=2026-11&area=Geheimgebiet",
        "/dashboard/table?period=2026-11&scope=area:Geheimgebiet",
        "/coordinator/v1/tables?period=2026-11&measure=cases_new&scope=area:Geheimgebiet",
    ):
        status, _, body = await fetch(stats_hub, url, "Caritas")
        assert status == 404, url
        assert "Verborgen" not in body


# --- 100 KB query strings, with the server's limits as `mbe-hub serve` sets them -----


@pytest.fixture
async def served_hub(
    hub_settings: HubSettings, hub_clock: FakeClock, aiohttp_client: AiohttpClient
) -> StatsHub:
    """The statistics hub under a test server with the request-line limit of `serve`."""
    app = create_app(hub_settings, deps=clocked(hub_clock), extensions=[add_stats])
    server = TestServer(app)
    # TestServer passes only start_server's arguments on to the AppRunner.
    await server.start_server(**SERVER_LIMITS)
    return StatsHub(hub_settings, hub_clock, app, await aiohttp_client(server))


async def test_100_kb_query_values_get_the_routes_own_answers(served_hub: StatsHub) -> None:
    """A 100 KB value reaches the routes: a German page on a view, a short problem on the
    API, and without a session a login redirect of normal length."""
    await hostile_offices(served_hub)
    long = "x" * 100_000
    for key in ("period", "scope", "area", "measure", "rows", "cols", "format"):
        for view in (*VIEWS, TABLE_VIEW):
            status, ctype, body = await fetch(served_hub, f"{view}?period=2026-11&{key}={long}")
            if key == "period":
                status, ctype, body = await fetch(served_hub, f"{view}?period={long}")
            assert ctype == "text/html", (view, key)
            assert status in (200, 400, 404), (view, key)
            assert "x" * 100 not in body, (view, key)
        for api in API:
            status, ctype, body = await fetch(served_hub, f"{api}period=2026-11&{key}={long}")
            if status == 200:  # a parameter this route does not read
                continue
            assert 400 <= status < 500, (api, key)
            assert ctype == "application/problem+json", (api, key)
            assert len(body) < 1000, (api, key)
    for scope in (f"office:{long}", f"area:{long}", f"organisation:{long}"):
        status, ctype, body = await fetch(served_hub, f"{API[0]}period=2026-11&scope={scope}")
        assert (status, ctype) == (404, "application/problem+json")
        assert len(body) < 1000
    resp = await served_hub.http.request("GET", f"/dashboard/table?x={long}", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/dashboard/login?next=%2Fdashboard%2Ftable"
