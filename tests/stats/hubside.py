"""A hub with the statistics extension, simulated offices that submit sealed reports,
and the three-office fixture whose aggregates the API tests compare number by number."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from hub.keyfile import read_keys
from hub.settings import HubSettings
from hub.sites import add_site
from hub.stats.disclosure import DisclosurePolicy
from hub.tokens import create_token
from protocol.cellkeys import KEY_SPACE
from protocol.envelope import InnerMessage, seal
from protocol.ids import HUB_ID
from protocol.payloads import StatsCell, StatsReport
from tests.hub.client import HubClient, Node, Requester, enroll
from tests.hub.conftest import FakeClock, write_hub_dir
from tests.hub.engines import hub_db

# 2026-12-05 11:00 UTC: November 2026 has ended, its deadline (15 Dec) not yet passed.
START = 1_796_468_400
DAY = 86_400
PERIOD = "2026-11"
# 2026-12-16 01:00 Europe/Berlin: November's deadline day has ended, its numbers are fixed.
PUBLISHED = 1_797_379_200

Cells = dict[tuple[str, tuple[tuple[str, str], ...]], int]


def init_hub_dir(path: Path, stats: str = "", database: str = "") -> HubSettings:
    """A hub data directory as `mbe-hub init` makes it, with an optional [stats] table
    and `[database]` table (tests/hub/engines.py)."""
    return write_hub_dir(
        path,
        'region = "Region Köln"\npublic_url = "http://127.0.0.1:1"\nlog_level = "debug"\n'
        f"\n[stats]\n{stats}\n{database}",
    )


def fixture_key(measure: str, dims: tuple[tuple[str, str], ...], count: int) -> int:
    """A stand-in cell key for hand-written fixtures: fixed, spread over the key space.

    (A node sums per-record keys; tests that need real keys compute reports with
    node.stats.compute.)
    """
    text = f"{measure}|{dims}|{count}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=4).digest(), "big")


def keyed_cells(cells: Cells) -> tuple[StatsCell, ...]:
    return tuple(StatsCell(m, dict(d), n, fixture_key(m, d, n)) for (m, d), n in cells.items())


def make_report(cells: Cells, revision: int = 1, period: str = PERIOD) -> StatsReport:
    return StatsReport(
        period=period, revision=revision, generated=START - DAY, cells=keyed_cells(cells)
    )


def sealed_report(node: Node, report: StatsReport, now: int, msg_id: str | None = None) -> bytes:
    inner = InnerMessage(
        msg_id=msg_id or os.urandom(16).hex(),
        sender=node.node_id,
        recipient=HUB_ID,
        created=now,
        expires=now + 7 * DAY,
        payload=report,
    )
    return seal(inner, node.keys, node.hub_keys, ephemeral_secret=os.urandom(32)).encode()


@dataclass
class StatsHub:
    """The hub under test: settings, clock, app and an HTTP client to it."""

    settings: HubSettings
    clock: FakeClock
    app: web.Application
    http: Requester

    def add_site(self, name: str, org: str) -> str:
        """Add a site as the CLI in another process would; return its one-time code."""
        db = hub_db(self.settings)
        try:
            new = add_site(
                db,
                read_keys(self.settings.key_path),
                self.settings,
                name=name,
                org=org,
                services=["mbe"],
                languages=["de"],
                area="Köln",
                now=self.clock.now(),
                secret=secrets.randbits(60),
            )
        finally:
            db.close()
        return new.code

    async def node(self, name: str, org: str) -> Node:
        return await enroll(self.http, self.add_site(name, org))

    def token(self, org: str | None = None) -> str:
        db = hub_db(self.settings)
        try:
            return create_token(db, "coordinator", org, self.clock.now(), os.urandom(32))
        finally:
            db.close()

    async def submit(
        self, node: Node, report: StatsReport, msg_id: str | None = None
    ) -> aiohttp.ClientResponse:
        body = sealed_report(node, report, self.clock.now(), msg_id)
        return await HubClient(self.http, node, self.clock).signed("POST", "/v1/stats", body)

    async def get_json(self, path: str, token: str) -> Any:
        resp = await self.http.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 200, await resp.text()
        return await resp.json()


# --- the three-office fixture -------------------------------------------------------

ACTIVE, NEW, CLOSED = "cases_active", "cases_new", "cases_closed"


def _res(v: str) -> tuple[tuple[str, str], ...]:
    return (("residence", v),)


def _topic(v: str) -> tuple[tuple[str, str], ...]:
    return (("topic", v),)


OFFICE_A: Cells = {  # Caritas
    (ACTIVE, ()): 20,
    (ACTIVE, _res("settlement_permit")): 8,
    (ACTIVE, _res("residence_permit")): 7,
    (ACTIVE, _res("eu_citizen")): 5,
    (ACTIVE, _topic("residence_law")): 10,
    (ACTIVE, _topic("language_course")): 6,
    (ACTIVE, _topic("housing")): 2,
    (NEW, ()): 6,
    (CLOSED, ()): 2,
    (CLOSED, (("closure", "goals_achieved"),)): 2,
    ("contacts", ()): 30,
    ("contacts", (("channel", "in_person"),)): 20,
    ("contacts", (("channel", "phone"),)): 10,
}
OFFICE_B: Cells = {  # Caritas
    (ACTIVE, ()): 12,
    (ACTIVE, _res("settlement_permit")): 4,
    (ACTIVE, _res("asylum_pending")): 8,
    (ACTIVE, _topic("residence_law")): 5,
    (ACTIVE, _topic("housing")): 1,
    (ACTIVE, _topic("debt")): 6,
    (NEW, ()): 4,
}
OFFICE_C: Cells = {  # Diakonie
    (ACTIVE, ()): 9,
    (ACTIVE, _res("toleration")): 9,
    (ACTIVE, _topic("residence_law")): 9,
    (ACTIVE, _topic("family")): 1,
    (NEW, ()): 1,
    ("referrals_sent", ()): 3,
    ("referrals_sent", (("target", "jobcenter"),)): 3,
}


async def three_offices(hub: StatsHub, *, publish: bool = True) -> tuple[Node, Node, Node]:
    """Enroll offices A and B (Caritas) and C (Diakonie) and submit their reports;
    then (`publish`) move the clock past November's deadline, so its numbers are out."""
    a = await hub.node("Caritas Köln-Mitte", "Caritas")
    b = await hub.node("Caritas Köln-Porz", "Caritas")
    c = await hub.node("Diakonie Köln-Nord", "Diakonie")
    for node, cells in ((a, OFFICE_A), (b, OFFICE_B), (c, OFFICE_C)):
        resp = await hub.submit(node, make_report(cells))
        assert resp.status == 200, await resp.text()
    if publish:
        hub.clock.t = PUBLISHED
    return a, b, c


def published(offices: Iterable[Cells], ident: tuple[str, tuple[tuple[str, str], ...]]) -> int:
    """The number the hub publishes (default policy) for `ident` summed over `offices`."""
    count = sum(cells.get(ident, 0) for cells in offices)
    key = sum(fixture_key(*ident, cells[ident]) for cells in offices if ident in cells)
    return DisclosurePolicy().table.perturb(count, key % KEY_SPACE)
