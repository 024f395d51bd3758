"""Downloads (csv-de, xlsx) under attack: each names what it holds, formula-like names
stay text, and hostile query values get a problem answer, never a server error."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import openpyxl
import pytest

from tests.stats.hubside import PERIOD, PUBLISHED, StatsHub, make_report
from tests.stats.test_referral_view import office
from tests.stats.test_table_view import A, B, C

pytestmark = pytest.mark.one_engine  # tests/conftest.py


FORMULA_AREA = "+Nord"


async def area_offices(hub: StatsHub) -> None:
    """A and B (Caritas) in the area FORMULA_AREA, C (Diakonie) in Süd; published."""
    for (name, org, area), cells in zip(
        (
            ("Caritas Mitte", "Caritas", FORMULA_AREA),
            ("Caritas Porz", "Caritas", FORMULA_AREA),
            ("Diakonie Süd", "Diakonie", "Süd"),
        ),
        (A, B, C),
        strict=True,
    ):
        resp = await hub.submit(await office(hub, name, org, area), make_report(cells))
        assert resp.status == 200
    hub.clock.t = PUBLISHED


async def download(hub: StatsHub, fmt: str, **query: str) -> bytes:
    params = {"period": PERIOD, "measure": "cases_new", **query, "format": fmt}
    resp = await hub.http.request(
        "GET",
        "/coordinator/v1/tables?" + urlencode(params),
        headers={"Authorization": f"Bearer {hub.token()}"},
    )
    assert resp.status == 200, await resp.text()
    return await resp.read()


async def test_area_scope_downloads_name_the_area(stats_hub: StatsHub) -> None:
    """A table of one area says so in its title (csv-de and xlsx), so it cannot be taken
    for the region's table; the area's formula-like name stays text."""
    await area_offices(stats_hub)
    for scope, name in ((f"area:{FORMULA_AREA}", FORMULA_AREA), ("area:Süd", "Süd")):
        text = (await download(stats_hub, "csv-de", scope=scope)).decode("utf-8-sig")
        assert f"Neue Fälle, November 2026, Gebiet {name}" in text.splitlines()
        book = openpyxl.load_workbook(io.BytesIO(await download(stats_hub, "xlsx", scope=scope)))
        title = book.worksheets[0]["A1"]
        assert (title.value, title.data_type) == (f"Neue Fälle, November 2026, Gebiet {name}", "s")
    region = (await download(stats_hub, "csv-de")).decode("utf-8-sig")
    assert "Gebiet" not in region.split("Erläuterungen")[0]


async def test_rows_by_formula_like_area_are_text(stats_hub: StatsHub) -> None:
    """Rows by area: an area named like a formula is defused in csv-de and a string
    cell in xlsx."""
    await area_offices(stats_hub)
    text = (await download(stats_hub, "csv-de", rows="area")).decode("utf-8-sig")
    assert any(line.startswith(f"'{FORMULA_AREA};") for line in text.splitlines())
    book = openpyxl.load_workbook(io.BytesIO(await download(stats_hub, "xlsx", rows="area")))
    cells = [c for row in book.worksheets[0].iter_rows() for c in row if c.value == FORMULA_AREA]
    assert cells
    assert all(c.data_type == "s" for c in cells)
