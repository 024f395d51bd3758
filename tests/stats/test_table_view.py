"""The dashboard view "Tabellen": exactly the published numbers of the chosen table with
German labels, German error pages for what does not exist or may not be seen, and
download links to the same table."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from hub.stats import api
from hub.stats.table_view import DOWNLOADS, MAX_CHART_ROWS
from protocol import codes
from tests.hub.client import Node
from tests.stats.hubside import (
    ACTIVE,
    OFFICE_A,
    OFFICE_B,
    OFFICE_C,
    PERIOD,
    PUBLISHED,
    Cells,
    StatsHub,
    make_report,
    published,
)
from tests.stats.test_referral_view import office

pytestmark = pytest.mark.one_engine  # tests/conftest.py


F, M = ("gender", "female"), ("gender", "male")
IN, PH = ("channel", "in_person"), ("channel", "phone")

# The hubside offices with contacts by channel and gender (margins consistent).
A: Cells = {
    **OFFICE_A,
    ("contacts", (F,)): 18,
    ("contacts", (M,)): 12,
    ("contacts", (IN, F)): 12,
    ("contacts", (IN, M)): 8,
    ("contacts", (PH, F)): 6,
    ("contacts", (PH, M)): 4,
}
B: Cells = {
    **OFFICE_B,
    ("contacts", ()): 5,
    ("contacts", (PH,)): 5,
    ("contacts", (F,)): 5,
    ("contacts", (PH, F)): 5,
}
C: Cells = OFFICE_C
ALL = (A, B, C)


async def offices(hub: StatsHub, *, publish: bool = True) -> tuple[Node, Node, Node]:
    """Offices A and B (Caritas) and C (Diakonie) with the reports above."""
    a = await hub.node("Caritas Köln-Mitte", "Caritas")
    b = await hub.node("Caritas Köln-Porz", "Caritas")
    c = await hub.node("Diakonie Köln-Nord", "Diakonie")
    for node, cells in ((a, A), (b, B), (c, C)):
        resp = await hub.submit(node, make_report(cells))
        assert resp.status == 200, await resp.text()
    if publish:
        hub.clock.t = PUBLISHED  # November's numbers are out
    return a, b, c


async def get(hub: StatsHub, query: str, org: str | None = None) -> tuple[int, str]:
    token = hub.token(org)
    resp = await hub.http.request(
        "GET", f"/dashboard/table?{query}", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.content_type == "text/html"
    return resp.status, await resp.text()


Numbers = dict[tuple[str | None, str | None], int]


def numbers(html: str) -> tuple[Numbers, dict[str | None, str]]:
    """Every number of the result table by (row code, column code), None for totals;
    and the row names by row code."""
    found = re.search(r'<table class="grid numbers" id="result">(.*?)</table>', html, re.S)
    assert found is not None
    out: Numbers = {}
    names: dict[str | None, str] = {}
    for row, name, body in re.findall(
        r'<tr(?: data-row="([^"]*)"| class="total")><th scope="row">(.*?)</th>(.*?)</tr>',
        found.group(1),
    ):
        code = row or None
        names[code] = name
        for total, col, text in re.findall(
            r'<td class="num( total)?"(?: data-col="([^"]*)")?>(.*?)</td>', body
        ):
            value = re.sub(r"<sup[^>]*>.*?</sup>", "", text).replace(".", "")
            out[(code, None if total else col)] = int(value)
    return out, names


def german_rows(html: str) -> list[str]:
    return re.findall(r'<th scope="row">(.*?)</th>', html)


async def test_one_dimension_shows_the_published_numbers_in_german(stats_hub: StatsHub) -> None:
    """Active cases by residence: every code's published number, the total, German row
    names, and a chart with a bar per row."""
    await offices(stats_hub)
    status, html = await get(
        stats_hub, f"period={PERIOD}&measure={ACTIVE}&rows=residence&scope=region"
    )
    assert status == 200
    found, names = numbers(html)
    expected: Numbers = {
        (code, None): published(ALL, (ACTIVE, (("residence", code),))) for code in codes.RESIDENCE
    }
    expected[(None, None)] = published(ALL, (ACTIVE, ()))
    assert found == expected
    assert names["settlement_permit"] == "Niederlassungserlaubnis"
    assert names[None] == "Insgesamt"
    assert "Aktive Fälle nach Aufenthaltsstatus" in html
    assert "Meldungen von 3 Beratungsstellen" in html
    assert html.count('<g class="bar-row"') == len(codes.RESIDENCE)
    assert 'data-code="settlement_permit"' in html
    assert 'id="provisional"' not in html


async def test_two_dimensions_show_every_cell_and_margin(stats_hub: StatsHub) -> None:
    """Contacts by channel and gender: cells, row and column totals and the total are the
    published ones; columns read in German; the chart shows the rows' totals."""
    await offices(stats_hub)
    status, html = await get(
        stats_hub, f"period={PERIOD}&measure=contacts&rows=channel&cols=gender"
    )
    assert status == 200
    found, _ = numbers(html)
    expected: Numbers = {(None, None): published(ALL, ("contacts", ()))}
    for ch in codes.CONTACT_CHANNEL:
        expected[(ch, None)] = published(ALL, ("contacts", (("channel", ch),)))
        for g in codes.GENDER:
            pair = (("channel", ch), ("gender", g))
            expected[(ch, g)] = published(ALL, ("contacts", pair))
    for g in codes.GENDER:
        expected[(None, g)] = published(ALL, ("contacts", (("gender", g),)))
    assert found == expected
    assert '<th scope="col" data-col="female">weiblich</th>' in html
    assert "Kontakte nach Kontaktweg und Geschlecht" in html
    assert "Insgesamt je Zeile" in html
    assert html.count('<g class="bar-row"') == len(codes.CONTACT_CHANNEL)


async def test_office_rows_carry_office_names(stats_hub: StatsHub) -> None:
    """Rows by office: one row per reporting office, named, with that office's number;
    rows by organisation are named by their key."""
    a, b, c = await offices(stats_hub)
    status, html = await get(stats_hub, f"period={PERIOD}&measure={ACTIVE}&rows=office")
    assert status == 200
    found, names = numbers(html)
    assert found == {
        (a.node_id, None): published((A,), (ACTIVE, ())),
        (b.node_id, None): published((B,), (ACTIVE, ())),
        (c.node_id, None): published((C,), (ACTIVE, ())),
        (None, None): published(ALL, (ACTIVE, ())),
    }
    assert names[a.node_id] == "Caritas Köln-Mitte"
    assert german_rows(html) == [
        "Caritas Köln-Mitte",
        "Caritas Köln-Porz",
        "Diakonie Köln-Nord",
        "Insgesamt",
    ]
    status, html = await get(stats_hub, f"period={PERIOD}&measure={ACTIVE}&rows=organisation")
    found, _ = numbers(html)
    assert found[("Caritas", None)] == published((A, B), (ACTIVE, ()))
    assert found[("Diakonie", None)] == published((C,), (ACTIVE, ()))


async def test_an_organisation_coordinator_sees_only_its_offices(stats_hub: StatsHub) -> None:
    """An organisation-limited coordinator's table holds only its offices and their sums;
    another organisation's office is a German 404 page."""
    a, b, c = await offices(stats_hub)
    status, html = await get(
        stats_hub, f"period={PERIOD}&measure={ACTIVE}&rows=office&cols=residence", org="Caritas"
    )
    assert status == 200
    found, _ = numbers(html)
    assert found[(a.node_id, None)] == published((A,), (ACTIVE, ()))
    assert found[(b.node_id, "asylum_pending")] == published(
        (B,), (ACTIVE, (("residence", "asylum_pending"),))
    )
    assert found[(None, "toleration")] == 0  # only office C reported it
    assert found[(None, None)] == published((A, B), (ACTIVE, ()))
    assert c.node_id not in html
    assert "Diakonie" not in html
    assert "Träger Caritas: alle Beratungsstellen" in html
    status, html = await get(
        stats_hub, f"period={PERIOD}&measure={ACTIVE}&scope=office:{c.node_id}", org="Caritas"
    )
    assert status == 404
    assert "nicht zu den Beratungsstellen, die Sie sehen dürfen" in html
    assert 'class="grid numbers"' not in html


async def test_office_scope_of_the_region(stats_hub: StatsHub) -> None:
    """A region coordinator's office scope shows that office's published numbers only."""
    _, b, _ = await offices(stats_hub)
    status, html = await get(
        stats_hub, f"period={PERIOD}&measure={ACTIVE}&rows=topic&scope=office:{b.node_id}"
    )
    assert status == 200
    found, _ = numbers(html)
    assert found[("debt", None)] == published((B,), (ACTIVE, (("topic", "debt"),)))
    assert found[(None, None)] == published((B,), (ACTIVE, ()))
    assert "Beratungsstelle Caritas Köln-Porz" in html
    assert "Ein Fall kann mehrere Themen haben" in html


async def test_invalid_combinations_give_a_german_400_page(stats_hub: StatsHub) -> None:
    """Unknown measures, dimensions a measure lacks, columns without rows, nationality
    crossed with a person's dimension, a group as columns: a German page, status 400."""
    await offices(stats_hub)
    cases = {
        "measure=nope&rows=gender": "„nope“ ist keine Kennzahl",
        f"measure={ACTIVE}&rows=closure": "lässt sich nicht nach „Abschlussgrund“ aufteilen",
        f"measure={ACTIVE}&rows=planet": "nicht nach „planet“ aufteilen",
        f"measure={ACTIVE}&cols=gender": "Für Spalten bitte auch Zeilen wählen",
        f"measure={ACTIVE}&rows=gender&cols=gender": "verschiedene Merkmale",
        f"measure={ACTIVE}&rows=nationality&cols=gender": "Staatsangehörigkeit",
        f"measure={ACTIVE}&rows=gender&cols=office": "in den Spalten nicht nach",
        "rows=gender": "Bitte eine Kennzahl wählen",
        # Declines are counted by one person's dimension at a time, never by nationality.
        "measure=referrals_declined&rows=gender&cols=age_band": "zugleich gezählt",
        "measure=referrals_declined&rows=nationality": "nicht nach „Staatsangehörigkeit“",
    }
    for query, text in cases.items():
        status, html = await get(stats_hub, f"period={PERIOD}&{query}")
        assert status == 400, query
        assert text in html, query
        assert 'class="grid numbers"' not in html
    # The same measure with its own breakdown by nationality exists.
    status, _ = await get(
        stats_hub, f"period={PERIOD}&measure=contacts&rows=channel&cols=nationality"
    )
    assert status == 200


async def test_a_scope_outside_the_offices_gives_a_german_404_page(stats_hub: StatsHub) -> None:
    """An office or organisation the hub does not know is a German 404 page; a scope that is
    no scope a German 400 page."""
    await offices(stats_hub)
    for scope in ("office:nobody", "organisation:Nirgendwo"):
        status, html = await get(stats_hub, f"period={PERIOD}&measure={ACTIVE}&scope={scope}")
        assert status == 404, scope
        assert "Beratungsstellen, die Sie sehen dürfen" in html
    status, html = await get(stats_hub, f"period={PERIOD}&measure={ACTIVE}&scope=planet:earth")
    assert status == 400
    assert "Diese Auswahl ist ungültig." in html


async def test_download_links_point_at_the_same_table(stats_hub: StatsHub) -> None:
    """Each download link asks the coordinator API for this page's table (period, measure,
    rows, columns, scope); the JSON it answers holds the numbers the page shows."""
    a, _, _ = await offices(stats_hub)
    scope = "organisation:Caritas"
    status, html = await get(
        stats_hub, f"period={PERIOD}&measure=contacts&rows=channel&cols=gender&scope={scope}"
    )
    assert status == 200
    shown, _ = numbers(html)
    links = re.findall(r'<a class="download" href="([^"]*)">', html)
    assert len(links) == len(DOWNLOADS)
    token = stats_hub.token()
    formats = []
    for link in links:
        parts = urlsplit(link.replace("&amp;", "&"))
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert parts.path == "/coordinator/v1/tables"
        formats.append(query.pop("format"))
        assert query == {
            "period": PERIOD,
            "measure": "contacts",
            "rows": "channel",
            "cols": "gender",
            "scope": scope,
        }
        resp = await stats_hub.http.request(
            "GET", parts.path + "?" + parts.query, headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status == 200, link
    assert set(formats) == set(api.FORMATS)
    (json_link,) = [link for link in links if "format=json" in link]
    body = await stats_hub.get_json(json_link.replace("&amp;", "&"), token)
    served: Numbers = {(None, None): body["total"]["value"]}
    for r, row in enumerate(body["row_labels"]):
        served[(row, None)] = body["row_totals"][r]["value"]
        for c, col in enumerate(body["col_labels"]):
            served[(row, col)] = body["cells"][r][c]["value"]
    for c, col in enumerate(body["col_labels"]):
        served[(None, col)] = body["col_totals"][c]["value"]
    assert served == shown
    assert shown[(None, None)] == published((A, B), ("contacts", ()))
    assert f'data-row="{a.node_id}"' not in html  # an organisation scope: no office rows


async def test_before_publication_the_page_shows_no_number(stats_hub: StatsHub) -> None:
    """Before the deadline: the form and the provisional note, no table, chart or download."""
    await offices(stats_hub, publish=False)
    status, html = await get(stats_hub, f"period={PERIOD}&measure={ACTIVE}&rows=residence")
    assert status == 200
    assert 'id="provisional"' in html
    assert "Vorläufig" in html
    assert "15.12.2026" in html
    assert 'id="result"' not in html
    assert "<svg" not in html
    assert "/coordinator/v1/tables" not in html
    assert '<select id="measure" name="measure">' in html


async def test_an_office_without_a_report_says_keine_meldung(stats_hub: StatsHub) -> None:
    """An office that sent nothing for the period shows "keine Meldung", no numbers."""
    await offices(stats_hub)
    quiet = await stats_hub.node("Caritas Köln-Kalk", "Caritas")
    status, html = await get(
        stats_hub, f"period={PERIOD}&measure={ACTIVE}&rows=gender&scope=office:{quiet.node_id}"
    )
    assert status == 200
    assert 'id="no-report"' in html
    assert "keine Meldung" in html
    assert 'id="result"' not in html
    assert "<svg" not in html


async def test_the_form_keeps_the_choice_and_defaults(stats_hub: StatsHub) -> None:
    """Without a choice the page shows a default table; the form marks what was chosen and
    labels every option in German."""
    await offices(stats_hub)
    status, html = await get(stats_hub, f"period={PERIOD}")
    assert status == 200
    assert 'id="result"' in html
    assert '<option value="cases_active" selected>Aktive Fälle</option>' in html
    status, html = await get(
        stats_hub, f"period={PERIOD}&measure=contacts&rows=channel&cols=gender"
    )
    assert '<option value="contacts" selected>Kontakte</option>' in html
    assert '<option value="channel" selected>Kontaktweg (nur Kontakte)</option>' in html
    assert '<option value="gender" selected>Geschlecht</option>' in html
    assert '<option value="region" selected>Region Köln: alle Beratungsstellen</option>' in html


async def test_area_rows_name_each_area(stats_hub: StatsHub) -> None:
    """Rows by area: one row per area with the published sum of its offices."""
    for name, org, area in (
        ("Caritas Köln-Mitte", "Caritas", "Köln-Nord"),
        ("Diakonie Köln-Süd", "Diakonie", "Köln-Süd"),
    ):
        node = await office(stats_hub, name, org, area)
        cells = A if org == "Caritas" else C
        assert (await stats_hub.submit(node, make_report(cells))).status == 200
    stats_hub.clock.t = PUBLISHED
    status, html = await get(stats_hub, f"period={PERIOD}&measure={ACTIVE}&rows=area")
    assert status == 200
    found, names = numbers(html)
    assert found == {
        ("Köln-Nord", None): published((A,), (ACTIVE, ())),
        ("Köln-Süd", None): published((C,), (ACTIVE, ())),
        (None, None): published((A, C), (ACTIVE, ())),
    }
    assert names["Köln-Nord"] == "Köln-Nord"
    assert '<option value="area" selected>Gebiet</option>' in html


async def test_an_area_scope_sums_only_that_areas_offices(stats_hub: StatsHub) -> None:
    """Scope Gebiet: the table of one area's offices, offered in the form; an area the
    coordinator has no office in is a German 404 page."""
    for name, org, area in (
        ("Caritas Köln-Mitte", "Caritas", "Köln-Nord"),
        ("Diakonie Köln-Süd", "Diakonie", "Köln-Süd"),
    ):
        node = await office(stats_hub, name, org, area)
        cells = A if org == "Caritas" else C
        assert (await stats_hub.submit(node, make_report(cells))).status == 200
    stats_hub.clock.t = PUBLISHED
    scope = "area:" + quote("Köln-Süd")
    status, html = await get(stats_hub, f"period={PERIOD}&measure={ACTIVE}&scope={scope}")
    assert status == 200
    found, _ = numbers(html)
    assert found == {(None, None): published((C,), (ACTIVE, ()))}
    assert '<option value="area:Köln-Süd" selected>Gebiet Köln-Süd</option>' in html
    assert "Gebiet Köln-Süd ·" in html
    status, html = await get(
        stats_hub, f"period={PERIOD}&measure={ACTIVE}&scope={scope}", "Caritas"
    )
    assert status == 404
    assert "nicht zu den Beratungsstellen" in html


async def test_pages_load_nothing_from_elsewhere_and_escape_names(stats_hub: StatsHub) -> None:
    """Tabellen and Verweisungen: every URL a local path, no script or inline style, and an
    office name with markup shown as text (in the rows and the scope choice)."""
    node = await stats_hub.node("<script>x</script> Köln", "Caritas")
    assert (await stats_hub.submit(node, make_report(A))).status == 200
    stats_hub.clock.t = PUBLISHED
    token = stats_hub.token()
    for path in (
        f"/dashboard/table?period={PERIOD}&measure={ACTIVE}&rows=office",
        f"/dashboard/referrals?period={PERIOD}",
    ):
        resp = await stats_hub.http.request(
            "GET", path, headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status == 200, path
        html = await resp.text()
        urls = re.findall(r'(?:href|src|action)="([^"]*)"', html)
        assert urls
        assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
        assert "<script" not in html
        assert "style=" not in html
    table = (await get(stats_hub, f"period={PERIOD}&measure={ACTIVE}&rows=office"))[1]
    shown = "&lt;script&gt;x&lt;/script&gt; Köln"
    assert f'<th scope="row">{shown}</th>' in table
    assert f">Beratungsstelle {shown}</option>" in table
    assert f'<text class="bar-label" x="222" y="25.0" text-anchor="end">{shown}</text>' in table


async def test_a_table_too_long_for_a_chart_keeps_every_row(stats_hub: StatsHub) -> None:
    """More rows than a chart holds: every row in the table, no chart, a note saying why."""
    many = [a + b for a in "ABC" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"][: MAX_CHART_ROWS + 1]
    cells: Cells = {(ACTIVE, ()): len(many)}
    cells.update({(ACTIVE, (("nationality", n),)): 1 for n in many})
    node = await stats_hub.node("Caritas Köln-Mitte", "Caritas")
    assert (await stats_hub.submit(node, make_report(cells))).status == 200
    stats_hub.clock.t = PUBLISHED
    status, html = await get(stats_hub, f"period={PERIOD}&measure={ACTIVE}&rows=nationality")
    assert status == 200
    found, _ = numbers(html)
    assert {row for row, _ in found} == {*many, None}
    assert found[(None, None)] == published((cells,), (ACTIVE, ()))
    assert "<svg" not in html
    assert f"Mehr als {MAX_CHART_ROWS} Zeilen: kein Diagramm" in html
