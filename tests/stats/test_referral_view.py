"""The dashboard view "Verweisungen": sent, accepted and declined referrals by target with
the decline share, declines by reason, waiting times and areas, all as published."""

from __future__ import annotations

import re
import secrets

import pytest

from hub.keyfile import read_keys
from hub.sites import add_site
from hub.stats.disclosure import Entry
from hub.stats.referral_view import SHARE_MIN_SENT, decline_share
from tests.hub.client import Node, enroll
from tests.hub.engines import hub_db
from tests.stats.hubside import PERIOD, PUBLISHED, Cells, StatsHub, make_report, published

pytestmark = pytest.mark.one_engine  # tests/conftest.py


SENT, ACC, DEC = "referrals_sent", "referrals_accepted", "referrals_declined"
REASON, ANS, UNANS = "referrals_declined_reason", "referrals_answered", "referrals_unanswered"


def _t(v: str) -> tuple[tuple[str, str], ...]:
    return (("target", v),)


def _w(v: str) -> tuple[tuple[str, str], ...]:
    return (("wait_band", v),)


def _r(v: str) -> tuple[tuple[str, str], ...]:
    return (("decline_reason", v),)


# Office A (Caritas, Köln-Nord): enough referrals to the Jobcenter for a share.
A: Cells = {
    (SENT, ()): 14,
    (SENT, _t("jobcenter")): 8,
    (SENT, _t("jmd")): 6,
    (ACC, ()): 6,
    (ACC, _t("jobcenter")): 4,
    (ACC, _t("jmd")): 2,
    (DEC, ()): 5,
    (DEC, _t("jobcenter")): 3,
    (DEC, _t("jmd")): 2,
    (REASON, ()): 5,
    (REASON, _r("no_capacity")): 3,
    (REASON, _r("not_responsible")): 2,
    (ANS, ()): 11,
    (ANS, _w("same_day")): 2,
    (ANS, _w("1_3_days")): 5,
    (ANS, _w("4_7_days")): 4,
    (UNANS, ()): 3,
    (UNANS, _w("8_14_days")): 1,
    (UNANS, _w("over_14_days")): 2,
}
# Office B (Caritas, Köln-Nord).
B: Cells = {
    (SENT, ()): 12,
    (SENT, _t("jobcenter")): 12,
    (DEC, ()): 4,
    (DEC, _t("jobcenter")): 4,
    (REASON, ()): 4,
    (REASON, _r("no_capacity")): 4,
    (ANS, ()): 4,
    (ANS, _w("1_3_days")): 4,
}
# Office C (Diakonie, Köln-Süd): sent only.
C: Cells = {(SENT, ()): 3, (SENT, _t("jobcenter")): 3}
ALL = (A, B, C)


async def office(hub: StatsHub, name: str, org: str, area: str) -> Node:
    """Enroll an office of `area` (StatsHub.add_site puts every office in Köln)."""
    db = hub_db(hub.settings)
    try:
        new = add_site(
            db,
            read_keys(hub.settings.key_path),
            hub.settings,
            name=name,
            org=org,
            services=["mbe"],
            languages=["de"],
            area=area,
            now=hub.clock.now(),
            secret=secrets.randbits(60),
        )
    finally:
        db.close()
    return await enroll(hub.http, new.code)


async def referral_offices(hub: StatsHub, *, publish: bool = True) -> None:
    for (name, org, area), cells in zip(
        (
            ("Caritas Köln-Mitte", "Caritas", "Köln-Nord"),
            ("Caritas Köln-Porz", "Caritas", "Köln-Nord"),
            ("Diakonie Köln-Süd", "Diakonie", "Köln-Süd"),
        ),
        ALL,
        strict=True,
    ):
        node = await office(hub, name, org, area)
        resp = await hub.submit(node, make_report(cells))
        assert resp.status == 200, await resp.text()
    if publish:
        hub.clock.t = PUBLISHED


async def get(hub: StatsHub, org: str | None = None) -> str:
    token = hub.token(org)
    resp = await hub.http.request(
        "GET", f"/dashboard/referrals?period={PERIOD}", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status == 200
    assert resp.content_type == "text/html"
    return await resp.text()


Rows = dict[str | None, list[str]]


def rows(html: str, table_id: str) -> Rows:
    """The cells' texts (few-offices mark removed) of table `table_id` by row code, None for
    the totals row."""
    found = re.search(rf'<table class="grid numbers" id="{table_id}">(.*?)</table>', html, re.S)
    assert found is not None, table_id
    out: Rows = {}
    for code, total, body in re.findall(
        r'<tr(?: data-row="([^"]*)"|( class="total"))><th scope="row">.*?</th>(.*?)</tr>',
        found.group(1),
    ):
        cells = re.findall(r'<td class="num[^"]*">(.*?)</td>', body)
        out[None if total else code] = [re.sub(r"<sup[^>]*>.*?</sup>", "", c) for c in cells]
    return out


def value(offices: tuple[Cells, ...], measure: str, dims: tuple[tuple[str, str], ...]) -> str:
    return str(published(offices, (measure, dims)))


def share(offices: tuple[Cells, ...], dims: tuple[tuple[str, str], ...]) -> str:
    sent = published(offices, (SENT, dims))
    declined = published(offices, (DEC, dims))
    return decline_share(Entry(sent), Entry(declined))


async def test_targets_side_by_side_with_the_decline_share(stats_hub: StatsHub) -> None:
    """Sent, accepted and declined per target and in total are the published numbers; the
    share is declined of sent from those, "–" for few referrals."""
    await referral_offices(stats_hub)
    html = await get(stats_hub)
    found = rows(html, "by-target")
    for code in ("jobcenter", "jmd", "mbe"):
        t = _t(code)
        expected = [value(ALL, m, t) for m in (SENT, ACC, DEC)] + [share(ALL, t)]
        assert found[code] == expected, code
    assert found[None] == [value(ALL, m, ()) for m in (SENT, ACC, DEC)] + [share(ALL, ())]
    assert found["mbe"] == ["0", "0", "0", "–"]
    assert found["jmd"][3] == "–"  # 6 sent: too few for a share
    jobcenter = published(ALL, (SENT, _t("jobcenter")))
    assert jobcenter >= SHARE_MIN_SENT
    assert found["jobcenter"][3].endswith("\u00a0%")
    assert "Jobcenter</th>" in html
    assert "Jugendmigrationsdienst</th>" in html
    assert "Meldungen von 3 Beratungsstellen" in html
    assert 'id="share-note"' in html


async def test_reasons_waiting_times_and_areas(stats_hub: StatsHub) -> None:
    """Declines by reason, waiting bands of answered and unanswered referrals, and every
    area's figures are the published numbers, in German."""
    await referral_offices(stats_hub)
    html = await get(stats_hub)
    reasons = rows(html, "by-reason")
    assert reasons["no_capacity"] == [value(ALL, REASON, _r("no_capacity"))]
    assert reasons["not_responsible"] == [value(ALL, REASON, _r("not_responsible"))]
    assert reasons[None] == [value(ALL, REASON, ())]
    assert "keine Kapazität</th>" in html
    wait = rows(html, "by-wait")
    for band in ("same_day", "1_3_days", "4_7_days", "8_14_days", "over_14_days"):
        assert wait[band] == [value(ALL, ANS, _w(band)), value(ALL, UNANS, _w(band))], band
    assert wait[None] == [value(ALL, ANS, ()), value(ALL, UNANS, ())]
    assert list(wait)[:5] == ["same_day", "1_3_days", "4_7_days", "8_14_days", "over_14_days"]
    assert "am selben Tag</th>" in html
    areas = rows(html, "by-area")
    measures = (SENT, ACC, DEC, ANS, UNANS)
    north, south = (A, B), (C,)
    assert areas["Köln-Nord"] == [value(north, m, ()) for m in measures] + [share(north, ())]
    assert areas["Köln-Süd"] == [value(south, SENT, ()), "0", "0", "0", "0", "–"]
    assert areas[None][:3] == [value(ALL, m, ()) for m in measures[:3]]
    assert html.count('<g class="bar-row"') == 9 + 5  # targets, reasons


async def test_an_organisation_coordinator_sees_its_referrals_only(stats_hub: StatsHub) -> None:
    """For Diakonie's coordinator the page holds office C's published numbers only."""
    await referral_offices(stats_hub)
    html = await get(stats_hub, org="Diakonie")
    found = rows(html, "by-target")
    assert found["jobcenter"][0] == value((C,), SENT, _t("jobcenter"))
    assert found[None][0] == value((C,), SENT, ())
    areas = rows(html, "by-area")
    assert list(areas) == ["Köln-Süd", None]
    assert "Köln-Nord" not in html
    assert "Meldungen von 1 Beratungsstelle<" in html


async def test_before_publication_no_referral_number(stats_hub: StatsHub) -> None:
    """Before the deadline the page is provisional: no table, no chart."""
    await referral_offices(stats_hub, publish=False)
    html = await get(stats_hub)
    assert 'id="provisional"' in html
    assert "15.12.2026" in html
    assert 'class="grid numbers"' not in html
    assert "<svg" not in html


def test_decline_share_is_german_and_needs_enough_referrals() -> None:
    """The share is a whole German percentage of two published numbers; "–" below the
    threshold and for nothing sent."""
    assert decline_share(Entry(0), Entry(0)) == "–"
    assert decline_share(Entry(SHARE_MIN_SENT - 1), Entry(3)) == "–"
    assert decline_share(Entry(40), Entry(10)) == "25\u00a0%"
    assert decline_share(Entry(30), Entry(10)) == "33\u00a0%"
    assert decline_share(Entry(10), Entry(12)) == "120\u00a0%"
