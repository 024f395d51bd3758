"""The dashboard in headless Chromium: login, a period's page, charts, no foreign request."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient, AiohttpServer

from hub.app import create_app
from hub.settings import HubSettings
from hub.stats.routes import add_stats
from tests.browser import recorded_page
from tests.clocks import clocked
from tests.hub.conftest import FakeClock
from tests.stats.hubside import (
    OFFICE_A,
    OFFICE_B,
    OFFICE_C,
    PERIOD,
    StatsHub,
    published,
    three_offices,
)

pytestmark = pytest.mark.one_engine  # tests/conftest.py

ALL = (OFFICE_A, OFFICE_B, OFFICE_C)


async def test_dashboard_in_a_real_browser(
    hub_settings: HubSettings,
    hub_clock: FakeClock,
    aiohttp_server: AiohttpServer,
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
) -> None:
    """Log in with a token, pick a period, find both SVG charts and the completeness table;
    no console error and not one request outside the hub's origin."""
    app = create_app(hub_settings, deps=clocked(hub_clock), extensions=[add_stats])
    server = await aiohttp_server(app, host="127.0.0.1")
    hub = StatsHub(hub_settings, hub_clock, app, await aiohttp_client(server))
    await three_offices(hub)
    token = hub.token()
    origin = str(server.make_url("/")).rstrip("/")

    async with recorded_page(width=1280) as (page, recording):
        await page.goto(f"{origin}/dashboard?period={PERIOD}")
        assert page.url == f"{origin}/dashboard/login?next=%2Fdashboard%3Fperiod%3D{PERIOD}"
        await page.fill("#token", token)
        await page.click("button[type=submit]")
        # The login leads back to the page asked for, period included.
        await page.wait_for_url(f"{origin}/dashboard?period={PERIOD}")
        await page.select_option("#period", PERIOD)
        await page.click("form.period button")
        await page.wait_for_url(f"{origin}/dashboard?period={PERIOD}")

        assert await page.locator("svg.chart-wide").count() == 2
        assert await page.locator("#chart-topic .bar-row").count() == 12
        assert await page.locator("#chart-residence .bar-row").count() == 9
        assert await page.locator("#completeness tbody tr").count() == 3
        statuses = await page.locator("#completeness .status").all_inner_texts()
        assert statuses == ["gemeldet"] * 3
        closed = page.locator('.figure[data-measure="cases_closed"] .figure-value')
        # cases_closed: true 2, from one office: its protected value, marked unless it is 0.
        ident = ("cases_closed", ())
        value = published(ALL, ident)
        assert (await closed.inner_text()).strip() == f"{value}{'¹' if value else ''}"
        active = page.locator('.figure[data-measure="cases_active"] .figure-value')
        expected = published(ALL, ("cases_active", ()))
        assert (await active.inner_text()).strip() == str(expected)
        assert "leicht verändert" in await page.locator("#privacy").inner_text()
        assert await page.locator("#directory tbody tr").count() == 3
        assert await page.get_attribute("a.download", "href") == (
            f"/coordinator/v1/overview?period={PERIOD}&format=csv"
        )
        await page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    assert recording.problems == []
    foreign = [u for u in recording.requests if not u.startswith(origin + "/")]
    assert foreign == []
    assert any(u.endswith("/dashboard/dashboard.css") for u in recording.requests)
