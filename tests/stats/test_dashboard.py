"""The dashboard's HTML: German labels, protected numbers, the provisional state before the
deadline, the privacy note, security headers, no outside URL."""

from __future__ import annotations

import re

import pytest
from jinja2 import UndefinedError

from hub.stats import labels, languages, pages, view
from hub.stats.routes import CSP
from protocol import codes
from tests.hub.engines import hub_db
from tests.stats.hubside import (
    ACTIVE,
    CLOSED,
    DAY,
    OFFICE_A,
    OFFICE_B,
    OFFICE_C,
    PERIOD,
    StatsHub,
    make_report,
    published,
    three_offices,
)

pytestmark = pytest.mark.one_engine  # tests/conftest.py


async def _page(hub: StatsHub, path: str) -> tuple[str, dict[str, str]]:
    token = hub.token()
    resp = await hub.http.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    return await resp.text(), dict(resp.headers)


async def test_dashboard_page_shows_protected_numbers_in_german(stats_hub: StatsHub) -> None:
    """Published numbers are the protected ones, codes read in German, the period is marked."""
    await three_offices(stats_hub)
    html, headers = await _page(stats_hub, f"/dashboard?period={PERIOD}")
    assert headers["Content-Security-Policy"] == CSP
    assert headers["Cache-Control"] == "no-store"
    assert "November 2026" in html
    assert '<option value="2026-11" selected>' in html
    assert html.count("<svg") == 4  # two charts, each wide and narrow
    assert "Niederlassungserlaubnis" in html
    assert "settlement_permit" not in re.sub(r'data-code="[^"]*"', "", html)
    # cases_closed (true 2) is shown as its protected value, never as 2.
    closed = re.search(r'data-measure="cases_closed">(.*?)</div></div>', html)
    assert closed is not None
    expected = published((OFFICE_A, OFFICE_B, OFFICE_C), (CLOSED, ()))
    assert f'<span class="value">{expected}</span>' in closed.group(1)
    assert expected != 2
    privacy = re.search(r'<section class="legend" id="privacy">(.*?)</section>', html)
    assert privacy is not None
    assert "leicht verändert" in privacy.group(1)
    assert "höchstens 4" in privacy.group(1)
    assert "von 1 bis 2" in privacy.group(1)
    assert "Gesamtzahl" in privacy.group(1)
    assert "provisional" not in html
    assert "gemeldet" in html


async def test_before_the_deadline_the_dashboard_shows_completeness_only(
    stats_hub: StatsHub,
) -> None:
    """A period whose deadline has not passed is marked provisional and shows no number."""
    await three_offices(stats_hub, publish=False)
    html, _ = await _page(stats_hub, f"/dashboard?period={PERIOD}")
    assert 'id="provisional"' in html
    assert "Vorläufig" in html
    assert "15.12.2026" in html
    assert "data-measure" not in html
    assert "<svg" not in html
    assert 'id="completeness"' in html
    assert "CSV herunterladen" not in html


async def test_late_revisions_are_counted_for_the_reader(stats_hub: StatsHub) -> None:
    """After publication, corrections that came too late are counted, not used."""
    _, b, _ = await three_offices(stats_hub)
    before, _ = await _page(stats_hub, f"/dashboard?period={PERIOD}")
    assert "late-revisions" not in before
    stats_hub.clock.advance(DAY)
    assert (await stats_hub.submit(b, make_report({(ACTIVE, ()): 2}, revision=2))).status == 200
    html, _ = await _page(stats_hub, f"/dashboard?period={PERIOD}")
    note = re.search(r'<p class="note" id="late-revisions">(.*?)</p>', html)
    assert note is not None
    assert "Korrekturen: 1." in note.group(1)


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


async def test_stored_names_reach_the_page_only_escaped(stats_hub: StatsHub) -> None:
    """An office or organisation name with markup in it (the operator types them) is
    shown as text: in the header, the completeness table and the directory."""
    name = "<script>alert(1)</script> Köln"
    org = '<b class="x">Träger</b>'
    node = await stats_hub.node(name, org)
    assert (await stats_hub.submit(node, make_report({(ACTIVE, ()): 5}))).status == 200
    token = stats_hub.token(org)
    resp = await stats_hub.http.request(
        "GET", f"/dashboard?period={PERIOD}", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status == 200
    html = await resp.text()
    assert "<script" not in html
    assert "<b " not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt; Köln") == 2
    assert html.count("&lt;b class=&#34;x&#34;&gt;Träger&lt;/b&gt;") == 3
    assert "Koordination: Träger &lt;b class=" in html


def test_login_and_notice_escape_what_they_show() -> None:
    """The region and a message are text on the login page and the notice page."""
    login = pages.login_page("<i>Region</i>", "<script>x</script>")
    assert "&lt;i&gt;Region&lt;/i&gt;" in login
    assert "&lt;script&gt;x&lt;/script&gt;" in login
    assert "<script" not in login
    notice = pages.message_page("<img src=x>")
    assert "&lt;img src=x&gt;" in notice
    assert "<img" not in notice


def test_templates_are_autoescaped_and_strict() -> None:
    """Escaping is on for every template, and a variable the caller forgot is an error,
    not an empty string."""
    assert pages.ENV.env.autoescape is True
    with pytest.raises(UndefinedError):
        pages.ENV.get_template("login.html").render(region="Region Köln")


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


def test_counts_take_the_singular_for_one_only() -> None:
    """`count` puts the noun in the right number; without nouns it is Jinja's length."""
    one, many = "Beratungsstelle", "Beratungsstellen"
    assert pages.counted(1, one, many) == "1 Beratungsstelle"
    assert pages.counted(0, one, many) == "0 Beratungsstellen"
    assert pages.counted(3, one, many) == "3 Beratungsstellen"
    assert pages.counted(1200, one, many) == "1.200 Beratungsstellen"
    template = pages.ENV.env.from_string(
        '{{ n | count("Beratungsstelle", "Beratungsstellen") }}; {{ xs | count }}'
    )
    assert template.render(n=1, xs=[1, 2]) == "1 Beratungsstelle; 2"


def test_languages_read_as_german_names() -> None:
    """Codes become German names in the site's order; an unknown code stays visible."""
    assert languages.names(["ar", "tr"]) == "Arabisch, Türkisch"
    assert languages.name("xq") == "xq"
    common = "ar fa ps ku tr uk ru pl ro bg sq sr hr bs ti so am en fr es it pt vi zh de"
    assert set(common.split()) <= set(languages.NAMES)
    assert len(languages.NAMES) >= 60
    assert all(codes.LANGUAGE.fullmatch(code) for code in languages.NAMES)


async def _org_page(hub: StatsHub, org: str) -> str:
    token = hub.token(org)
    resp = await hub.http.request(
        "GET", f"/dashboard?period={PERIOD}", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status == 200
    return await resp.text()


async def test_overview_counts_reporting_offices_in_german(stats_hub: StatsHub) -> None:
    """One office reads "1 Beratungsstelle"; a published period without any report shows
    "keine Meldung" instead of zeros, and no charts of zeros."""
    await three_offices(stats_hub)
    assert (
        "Meldungen von 3 Beratungsstellen<"
        in (await _page(stats_hub, f"/dashboard?period={PERIOD}"))[0]
    )
    assert "Meldungen von 1 Beratungsstelle<" in await _org_page(stats_hub, "Diakonie")
    await stats_hub.node("Malteser Köln-Kalk", "Malteser")  # enrolled, never reported
    html = await _org_page(stats_hub, "Malteser")
    assert 'id="no-reports"' in html
    assert html.count('<span class="none">keine Meldung</span>') == len(view.KEY_MEASURES)
    assert '<span class="value">' not in html
    assert "<svg" not in html
    assert "Meldungen von" not in html


async def test_directory_shows_language_names_and_revoked_access(stats_hub: StatsHub) -> None:
    """The office list names languages, and a revoked office reads "Zugang widerrufen",
    not "gesperrt" (a word for numbers held back)."""
    a, _, _ = await three_offices(stats_hub)
    db = hub_db(stats_hub.settings)
    try:
        db.execute("UPDATE sites SET status = 'revoked' WHERE node_id = ?", (a.node_id,))
    finally:
        db.close()
    html, _ = await _page(stats_hub, f"/dashboard?period={PERIOD}")
    directory = re.search(r'<table id="directory"(.*?)</table>', html, re.S)
    assert directory is not None
    assert directory.group(1).count("<td>Deutsch</td>") == 3
    assert directory.group(1).count("<td>Zugang widerrufen</td>") == 1
    assert "gesperrt" not in html


async def test_notices_lead_back_to_the_dashboard_or_the_login(stats_hub: StatsHub) -> None:
    """A view's error page leads to the overview; a refused login to the login form;
    a wrong token says "widerrufen", the word of `mbe-hub token revoke`."""
    token = stats_hub.token()
    resp = await stats_hub.http.request(
        "GET", "/dashboard?period=kaputt", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status == 400
    html = await resp.text()
    assert "ist kein Zeitraum" in html
    assert '<a href="/dashboard">Zum Überblick</a>' in html
    resp = await stats_hub.http.request(
        "POST",
        "/dashboard/login",
        data={"token": token},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert resp.status == 403
    assert '<a href="/dashboard/login">Zur Anmeldung</a>' in await resp.text()
    resp = await stats_hub.http.request(
        "POST", "/dashboard/login", data={"token": "mbeh_not-a-token"}, allow_redirects=False
    )
    text = await resp.text()
    assert "ungültig, widerrufen oder" in text
    assert "gesperrt" not in text
