"""Fixtures for the statistics core: three offices of two organisations with known reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from hub.app import create_app
from hub.settings import HubSettings
from hub.stats.aggregate import PeriodData
from hub.stats.cells import CellIdent
from hub.stats.periods import Period, parse_period
from hub.stats.routes import add_stats
from protocol.payloads import StatsReport
from tests.clocks import clocked
from tests.hub.conftest import FakeClock
from tests.hub.engines import database_table
from tests.stats.hubside import START, StatsHub, init_hub_dir, keyed_cells

PERIOD = "2026-11"
ORGANISATIONS = {"office-a": "caritas", "office-b": "caritas", "office-c": "diakonie"}


def report(cells: dict[CellIdent, int], revision: int = 1) -> StatsReport:
    """A report of PERIOD with the given non-zero cells."""
    return StatsReport(
        period=PERIOD,
        revision=revision,
        generated=1_764_547_200,
        cells=keyed_cells(cells),
    )


F, M = ("gender", "female"), ("gender", "male")
A27, A40, AU = ("age_band", "27_39"), ("age_band", "40_59"), ("age_band", "under_27")
N = "cases_new"

# Office a: 10 new cases, office b: 5, office c: 8 (all margins sent, zeros absent).
REPORTS = {
    "office-a": report(
        {
            (N, ()): 10,
            (N, (F,)): 6,
            (N, (M,)): 4,
            (N, (AU,)): 3,
            (N, (A27,)): 7,
            (N, (A27, F)): 4,
            (N, (AU, F)): 2,
            (N, (A27, M)): 3,
            (N, (AU, M)): 1,
            (N, (("nationality", "SY"),)): 10,
            ("cases_closed", ()): 4,
            ("cases_closed", (("closure", "goals_achieved"),)): 3,
            ("cases_closed", (("closure", "moved"),)): 1,
        }
    ),
    "office-b": report(
        {
            (N, ()): 5,
            (N, (F,)): 5,
            (N, (A40,)): 5,
            (N, (A40, F)): 5,
            (N, (("nationality", "UA"),)): 5,
            ("cases_closed", ()): 2,
            ("cases_closed", (("closure", "goals_achieved"),)): 2,
        }
    ),
    "office-c": report(
        {
            (N, ()): 8,
            (N, (M,)): 8,
            (N, (AU,)): 8,
            (N, (AU, M)): 8,
            (N, (("nationality", "SY"),)): 3,
            (N, (("nationality", "UA"),)): 5,
        }
    ),
}


@pytest.fixture
def period() -> Period:
    return parse_period(PERIOD)


@pytest.fixture
def data(period: Period) -> PeriodData:
    return PeriodData.from_reports(period, REPORTS, ORGANISATIONS)


@pytest.fixture
def hub_clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def hub_settings(tmp_path: Path, engine: str, request: pytest.FixtureRequest) -> HubSettings:
    return init_hub_dir(tmp_path / "hub", database=database_table(engine, request))


@pytest.fixture
async def stats_hub(
    hub_settings: HubSettings, hub_clock: FakeClock, aiohttp_client: AiohttpClient
) -> StatsHub:
    """The hub with the statistics extension, under a test client, at START."""
    app = create_app(hub_settings, deps=clocked(hub_clock), extensions=[add_stats])
    return StatsHub(hub_settings, hub_clock, app, await aiohttp_client(app))
