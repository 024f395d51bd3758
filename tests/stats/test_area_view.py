"""The dashboard view "Gebiete" (/dashboard/areas) over HTTP with a session: one German
row per area with its published numbers, offices, cases per office and the marker;
per area the charts, organisations and offices; an organisation's coordinator sees
its own areas and numbers only; before publication the offices only."""

from __future__ import annotations

import re

import aiohttp
import pytest

from hub.stats.areas import german_decimal
from tests.stats.hubside import ACTIVE, NEW, PERIOD, Cells, StatsHub, published
from tests.stats.test_areas import (
    OFFICES,
    area_offices,
    reports_of,
)

pytestmark = pytest.mark.one_engine  # tests/conftest.py


AREAS_WITH_REPORTS = ("Nord", "Süd", "West", "")


async def login(hub: StatsHub, org: str | None = None) -> None:
    """A dashboard session (the cookie stays in the test client)."""
    resp = await hub.http.request(
        "POST", "/dashboard/login", data={"token": hub.token(org)}, allow_redirects=False
    )
    assert resp.status == 303


async def page(hub: StatsHub, query: str = "") -> tuple[int, str]:
    resp = await hub.http.request("GET", f"/dashboard/areas?period={PERIOD}{query}")
    assert resp.content_type == "text/html"
    return resp.status, await resp.text()


def summary_rows(html: str) -> dict[str, list[str]]:
    """Area key -> the texts of its summary row's cells (name first), tags removed."""
    found = re.search(r'<table class="grid numbers" id="areas">(.*?)</table>', html, re.S)
    assert found is not None
    out = {}
    for key, body in re.findall(r'<tr data-area="([^"]*)"[^>]*>(.*?)</tr>', found.group(1), re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", body, re.S)
        out[key] = [re.sub(r"<[^>]+>", "", c).strip() for c in cells]
    return out


def shown(text: str, reports: list[Cells], measure: str) -> bool:
    """Whether `text` is the published total of `measure` over `reports`, with the
    few-offices mark exactly when fewer than 3 of them counted any."""
    value = published(reports, (measure, ()))
    few = value > 0 and 0 < sum(1 for r in reports if r.get((measure, ()), 0)) < 3
    return text == f"{value}{'¹' if few else ''}"


def offices_in(area: str, org: str | None = None) -> int:
    return sum(1 for o in OFFICES if o.area == area and org in (None, o.org))


async def test_each_area_is_a_german_row_of_published_numbers(stats_hub: StatsHub) -> None:
    """Region coordinator: every area with its published active and new cases, its active
    offices ("1 Beratungsstelle", "3 Beratungsstellen"), cases per office with a German
    comma from the published number, "keine Meldung" for an area without report, and
    the marker on Süd (60 cases at one office) with its rule explained."""
    await area_offices(stats_hub)
    await login(stats_hub)
    status, html = await page(stats_hub)
    assert status == 200
    rows = summary_rows(html)
    assert list(rows) == ["Nord", "Ost", "Süd", "West", ""]  # by name, "ohne Gebiet" last
    for area in AREAS_WITH_REPORTS:
        active = published(reports_of(area), (ACTIVE, ()))
        n = offices_in(area)
        name, shown_active, shown_new, shown_offices, ratio = rows[area]
        assert name == (area or "ohne Gebiet")
        assert shown(shown_active, reports_of(area), ACTIVE)
        assert shown(shown_new, reports_of(area), NEW)
        assert shown_offices == f"{n} {'Beratungsstelle' if n == 1 else 'Beratungsstellen'}"
        assert ratio.startswith(german_decimal(active / n))
    assert rows["Süd"][3] == "1 Beratungsstelle"
    assert rows["Nord"][3] == "3 Beratungsstellen"
    assert rows["Ost"][1:4] == ["keine Meldung", "keine Meldung", "1 Beratungsstelle"]
    assert rows["Ost"][4] == "–"
    marked = re.findall(r'<tr data-area="([^"]*)" class="many">', html)
    assert marked == ["Süd"]
    assert "▲ viele Fälle je Beratungsstelle" in rows["Süd"][4]
    rule = re.search(r'<p class="note" id="many-rule">(.*?)</p>', html, re.S)
    assert rule is not None
    assert "1,5-Fache des Medians" in rule.group(1)
    assert "Beratungsstellen ohne Gebiet zählen für den Median nicht" in rule.group(1)
    assert "Meldungen von 7 Beratungsstellen" in html
    # Every area's detail, with both charts per reporting area.
    assert html.count('<section class="area"') == 5
    assert html.count("<svg") == 4 * len(AREAS_WITH_REPORTS)  # 2 charts, wide and narrow


async def test_a_chosen_area_shows_its_topics_organisations_and_offices(
    stats_hub: StatsHub,
) -> None:
    """?area=Nord: Nord's published active cases by topic and by residence status, by
    organisation, and its offices with German services and languages; no other area's
    details. The downloads lead to the coordinator API's table by area."""
    await area_offices(stats_hub)
    await login(stats_hub)
    status, html = await page(stats_hub, "&area=Nord")
    assert status == 200
    assert re.findall(r'<section class="area" id="[^"]*" data-area="([^"]*)"', html) == ["Nord"]
    nord = reports_of("Nord")
    for topic in ("debt", "housing"):
        bar = re.search(rf'<g class="bar-row" data-code="{topic}">(.*?)</g>', html, re.S)
        assert bar is not None
        value = published(nord, (ACTIVE, (("topic", topic),)))
        assert '<text class="bar-value"' in bar.group(1)
        assert re.search(rf">{value}¹?</text>", bar.group(1)), bar.group(1)
    assert "Wohnen" in html  # topics read in German
    assert "Schulden" in html
    assert "Aufenthaltsstatus" in html
    for org in ("AWO", "Caritas", "Diakonie"):
        row = re.search(
            rf'<tr data-org="{org}"><th scope="row">{org}</th><td class="num">(\d+)', html
        )
        assert row is not None
        assert int(row.group(1)) == published(reports_of("Nord", org), (ACTIVE, ()))
    assert "Jugendmigrationsdienst" in html  # services in German
    assert "Arabisch" in html  # languages by name
    assert "Türkisch" in html
    assert 'name="area" value="Nord"' in html  # the period form keeps the area
    links = re.findall(r'<a class="download" href="([^"]*)"', html)
    assert len(links) == 3
    for link in links:
        assert "rows=area" in link
        resp = await stats_hub.http.request("GET", link.replace("&amp;", "&"))
        assert resp.status == 200, link


async def test_offices_without_area_are_a_group_of_their_own(stats_hub: StatsHub) -> None:
    """?area= (empty) is "ohne Gebiet": its numbers are those of the office without area."""
    await area_offices(stats_hub)
    await login(stats_hub)
    status, html = await page(stats_hub, "&area=")
    assert status == 200
    assert "Gebiet: ohne Gebiet" in html
    assert "Diakonie Zentrale" in html
    details = html.split('id="many-rule"')[1]
    assert "Caritas Nord" not in details


async def test_organisation_coordinator_sees_its_own_areas_and_numbers(
    stats_hub: StatsHub,
) -> None:
    """A Diakonie session: the rows are the areas of Diakonie's offices with Diakonie's
    published numbers; Süd (no Diakonie office) is neither a row nor reachable."""
    await area_offices(stats_hub)
    await login(stats_hub, "Diakonie")
    status, html = await page(stats_hub)
    assert status == 200
    rows = summary_rows(html)
    assert list(rows) == ["Nord", "West", ""]
    for area in rows:
        assert shown(rows[area][1], reports_of(area, "Diakonie"), ACTIVE)
        assert rows[area][3] == "1 Beratungsstelle"
    assert "Caritas" not in html
    assert "AWO" not in html
    status, html = await page(stats_hub, "&area=Süd")
    assert status == 404
    assert "nicht zu den Beratungsstellen" in html


async def test_before_publication_only_the_offices_are_shown(stats_hub: StatsHub) -> None:
    """Before the deadline: the German provisional note and the offices by area, no
    number, no download."""
    await area_offices(stats_hub, publish=False)
    await login(stats_hub)
    status, html = await page(stats_hub)
    assert status == 200
    assert 'id="provisional"' in html
    assert "Vorläufig" in html
    assert "15.12.2026" in html
    assert 'id="areas"' not in html
    assert "download" not in html
    assert "<svg" not in html
    sections = re.findall(r'<section class="area" data-area="([^"]*)">', html)
    assert sections == ["Nord", "Ost", "Süd", "West", ""]
    assert "3 aktive Beratungsstellen" in html
    assert "1 aktive Beratungsstelle<" in html


async def test_without_a_session_the_view_asks_for_the_login(stats_hub: StatsHub) -> None:
    """No session: a redirect to the login page that keeps the area view and period."""
    resp = await stats_hub.http.request(
        "GET", f"/dashboard/areas?period={PERIOD}", allow_redirects=False
    )
    assert resp.status == 303
    assert "next=%2Fdashboard%2Fareas" in resp.headers["Location"]
    assert isinstance(resp, aiohttp.ClientResponse)
