"""The dashboard's HTML: German labels, suppression markers, security headers, no outside URL."""

from __future__ import annotations

import re

from hub.stats import labels
from hub.stats.routes import CSP
from protocol import codes
from tests.stats.hubside import PERIOD, StatsHub, three_offices


async def _page(hub: StatsHub, path: str) -> tuple[str, dict[str, str]]:
    token = hub.token()
    resp = await hub.http.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    return await resp.text(), dict(resp.headers)


async def test_dashboard_page_shows_protected_numbers_in_german(stats_hub: StatsHub) -> None:
    """Suppressed numbers read "gesperrt", codes read in German, the selected period is marked."""
    await three_offices(stats_hub)
    html, headers = await _page(stats_hub, f"/dashboard?period={PERIOD}")
    assert headers["Content-Security-Policy"] == CSP
    assert headers["Cache-Control"] == "no-store"
    assert "November 2026" in html
    assert '<option value="2026-11" selected>' in html
    assert html.count("<svg") == 2
    assert "Niederlassungserlaubnis" in html
    assert "settlement_permit" not in re.sub(r'data-code="[^"]*"', "", html)
    # cases_closed (2) is suppressed: its value never appears next to its label.
    closed = re.search(r'data-measure="cases_closed">(.*?)</div></div>', html)
    assert closed is not None
    assert "gesperrt" in closed.group(1)
    assert ">2<" not in closed.group(1)
    assert "gemeldet" in html


async def test_no_page_refers_to_another_origin(stats_hub: StatsHub) -> None:
    """Dashboard and login page load nothing from elsewhere: every URL is a local path."""
    await three_offices(stats_hub)
    dashboard, _ = await _page(stats_hub, f"/dashboard?period={PERIOD}")
    login = await (await stats_hub.http.request("GET", "/dashboard/login")).text()
    for html in (dashboard, login):
        urls = re.findall(r'(?:href|src|action)="([^"]*)"', html)
        assert urls
        assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
        assert "<script" not in html
        assert "style=" not in html


def test_every_code_has_a_german_label() -> None:
    """Each closed code list of protocol/codes.py has a label for every code."""
    lists = {
        "gender": codes.GENDER,
        "age_band": codes.AGE_BAND,
        "residence": codes.RESIDENCE,
        "length_of_stay": codes.LENGTH_OF_STAY,
        "topic": codes.TOPIC,
        "closure": codes.CLOSURE,
        "channel": codes.CONTACT_CHANNEL,
        "target": codes.REFERRAL_TARGET,
    }
    for dim, values in lists.items():
        for value in values:
            assert labels.code(dim, value) != value, (dim, value)
    assert set(labels.MEASURES) == set(codes.MEASURES)
    assert labels.code("residence", "settlement_permit") == "Niederlassungserlaubnis"
    assert labels.period("2026-Q4") == "4. Quartal 2026"
