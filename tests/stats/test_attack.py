"""The attack that recomputed suppressed numbers, run against the cell key method.

Six synthetic offices (three organisations, one with a single office) with 3 to
12 cases each send their real reports for July to September 2026 and the third
quarter through the HTTP API; an attacker with a region token fetches every
table of those periods for active cases and contacts (all scopes, all shapes of
gender, age band, residence, topic and channel, rows by organisation and by
office) and solves them (tests.stats.attack). The hub is set up and read once
per module (about 1,400 requests); the tests judge what the attacker got.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import create_app
from hub.stats.routes import add_stats
from tests.clocks import clocked
from tests.hub.conftest import FakeClock
from tests.stats.attack import (
    PERIODS,
    QUARTER,
    Bools,
    Floats,
    Guesses,
    Noise,
    Published,
    SumKey,
    System,
    VarKey,
    bounds,
    build_system,
    certainty,
    determined,
    exact_reads,
    exact_values,
    fetch_all,
    guesses,
    least_squares,
    make_offices,
    office_reports,
    truth_of,
)
from tests.stats.hubside import StatsHub, init_hub_dir

SEED = 20261016
MEASURES = ("cases_active", "contacts")
BERLIN = ZoneInfo("Europe/Berlin")


def at(year: int, month: int, day: int, hour: int) -> int:
    """Unix seconds of a Berlin wall-clock time."""
    return int(dt.datetime(year, month, day, hour, tzinfo=BERLIN).timestamp())


# Each month's report arrives before its own deadline (period end + 15 days),
# September's and the quarter's once the quarter has ended. The tables are
# read after the last deadline (2026-10-15) has passed.
SUBMIT = {
    "2026-07": at(2026, 8, 3, 10),
    "2026-08": at(2026, 9, 3, 10),
    "2026-09": at(2026, 10, 5, 10),
    QUARTER: at(2026, 10, 5, 10),
}
READ = at(2026, 10, 16, 9)


@dataclass(frozen=True)
class Attack:
    """What the attacker read and computed, with the truth to judge it by."""

    published: Published
    noise: Noise
    truth: dict[VarKey, int]
    orgs: dict[str, str]  # office -> organisation
    system: System
    estimate: Floats  # attacker B
    exact: Floats  # attacker A
    pinned: Bools  # attacker A: determined by the equations


async def _read_tables(path: Path) -> tuple[Published, Noise, dict[VarKey, int], dict[str, str]]:
    """Enroll the offices, submit their reports on time, then read every table."""
    clock = FakeClock(SUBMIT["2026-07"])
    settings = init_hub_dir(path)
    app = create_app(settings, deps=clocked(clock), extensions=[add_stats])
    async with TestClient(TestServer(app)) as http:
        hub = StatsHub(settings, clock, app, http)
        offices = []
        for office in make_offices(SEED):
            node = await hub.node(office.name, office.org)
            offices.append((node, office.org, office_reports(office.facts, SUBMIT["2026-07"])))
        for period in PERIODS:
            clock.t = SUBMIT[period]
            for node, _, reports in offices:
                resp = await hub.submit(node, reports[period])
                assert resp.status == 200, await resp.text()
        clock.t = READ
        token = hub.token()

        async def get(path: str) -> Any:
            return await hub.get_json(path, token)

        noise = Noise.from_json(await get("/coordinator/v1/disclosure"))
        published = await fetch_all(get, MEASURES)
    truth = truth_of({node.node_id: reports for node, _, reports in offices})
    return published, noise, truth, {node.node_id: org for node, org, _ in offices}


@pytest.fixture(scope="module")
def attack(tmp_path_factory: pytest.TempPathFactory) -> Attack:
    """The fixture offices' tables, read once through the API and solved."""
    loop = asyncio.new_event_loop()
    try:
        published, noise, truth, orgs = loop.run_until_complete(
            _read_tables(tmp_path_factory.mktemp("attack"))
        )
    finally:
        loop.close()
    system = build_system(published)
    return Attack(
        published=published,
        noise=noise,
        truth=truth,
        orgs=orgs,
        system=system,
        estimate=least_squares(system),
        exact=exact_values(system),
        pinned=determined(system),
    )


def small_guesses(attack: Attack) -> Guesses:
    return guesses(attack.system, attack.noise, attack.truth, attack.estimate)


def margin(better: Bools, worse: Bools, independent: int) -> float:
    """How far `better`'s share right may exceed `worse`'s by chance: two standard
    errors of the paired difference (both are scored on the same numbers), counting
    only `independent` observations, floored at one percentage point.

    Aggregates repeat office counts (a region number from one office is that
    office's number, same records, same noise), so only the office-level small
    counts are counted as independent. A chance excess then fails about one run
    in forty; the floor keeps a tie on few numbers from failing.
    """
    diff = better.astype(np.float64) - worse.astype(np.float64)
    return max(2 * float(diff.std(ddof=1)) / math.sqrt(independent), 0.01)


def test_fixture_hides_hundreds_of_small_numbers(attack: Attack) -> None:
    """The published tables contain hundreds of true 1s and 2s, office counts and aggregates."""
    found = small_guesses(attack)
    assert attack.noise.js == 2
    assert int(found.office.sum()) >= 500
    assert len(found.keys) - int(found.office.sum()) >= 500
    assert attack.published.tables >= 1000


def test_a_number_reads_the_same_in_every_table_shape_and_scope(attack: Attack) -> None:
    """The same cell read through different shapes, scopes and rows by group is one value."""
    published = attack.published
    assert published.conflicts == []
    assert all(v is not None for v in published.values.values())
    region = tuple(sorted(attack.orgs))
    female = SumKey(QUARTER, region, "contacts", (("gender", "female"),))
    assert {
        "scope=region&rows=gender",
        "scope=region&rows=gender&cols=age_band",
        "scope=region&rows=gender&cols=residence",
        "scope=region&rows=gender&cols=channel",
    } <= published.sources[female]
    # The organisation with a single office: its scope, the office's scope and the
    # office's row in tables by office and by organisation give the same numbers.
    (alone,) = [o for o in region if list(attack.orgs.values()).count(attack.orgs[o]) == 1]
    org, office = f"scope=organisation:{attack.orgs[alone]}", f"scope=office:{alone}"
    total = published.sources[SumKey(QUARTER, (alone,), "contacts", ())]
    assert {org, office, "scope=region&rows=office", "scope=region&rows=organisation"} <= total
    phone = published.sources[SumKey(QUARTER, (alone,), "contacts", (("channel", "phone"),))]
    assert {f"{org}&rows=channel", f"{office}&rows=channel"} <= phone
    assert "scope=region&rows=office&cols=channel" in phone
    pair = (("age_band", "27_39"), ("gender", "male"))
    assert {f"{org}&rows=gender&cols=age_band", f"{office}&rows=gender&cols=age_band"} <= (
        published.sources[SumKey(QUARTER, (alone,), "contacts", pair)]
    )


# What combining tables may add, in share of small numbers named right, over the
# published noise table alone. Measured about 0.03 for every parameter set tried
# (docs/statistics.md): independent noise on a margin and on its cells makes
# their difference a second, noisier view of a cell. The bound catches a
# protection that falls apart (no noise, or the noise of one cell repeated).
LEAST_SQUARES_GAIN = 0.05


def test_least_squares_gains_little_over_the_noise_table(attack: Attack) -> None:
    """Told a number is 1 or 2, solving all tables guesses which at most a few points
    better than the published noise table with the number alone."""
    found = small_guesses(attack)
    b, base = float(found.b.mean()), float(found.baseline.mean())
    allowed = LEAST_SQUARES_GAIN + margin(found.b, found.baseline, int(found.office.sum()))
    assert b <= base + allowed, (
        f"least squares names {b:.3f} of {len(found.keys)} small numbers right, "
        f"the published noise table alone {base:.3f} (allowed {allowed:.3f} more)"
    )
    assert b < 0.75  # far from knowing: a quarter of the guesses between 1 and 2 are wrong


def test_exact_solving_reads_no_more_small_counts_than_guessing(attack: Attack) -> None:
    """Exact solving, which beat suppression, reads 1s and 2s no better than guessing does."""
    reads = exact_reads(attack.system, attack.truth, attack.exact, attack.pinned, attack.noise.js)
    found = small_guesses(attack)
    office = {
        (k.period, k.offices[0], k.measure, k.dims): bool(right)
        for k, right in zip(found.keys, found.baseline, strict=True)
        if len(k.offices) == 1
    }
    guessed = np.array([office[k] for k in reads.keys], dtype=bool)
    # Every office count is published in its office's own tables: all are "determined"...
    assert len(reads.keys) == len(office)
    assert reads.determined.all()
    # ...but what A reads for them is noisy: no more right than the baseline's guess.
    share, base = float(reads.right.mean()), float(guessed.mean())
    assert share <= base + margin(reads.right, guessed, len(reads.keys)), (share, base)


def test_no_small_count_is_pinned_by_the_published_ranges(attack: Attack) -> None:
    """No office's true 1 or 2 is the only integer the published numbers and relations allow."""
    system = attack.system
    truth = np.array([attack.truth.get(v, 0) for v in system.variables], dtype=np.float64)
    small = [j for j in range(system.size) if 1 <= truth[j] <= attack.noise.js]
    found = certainty(system, bounds(system, attack.noise), small, truth)
    examples = [
        f"{system.variables[j]} = {truth[j]:.0f} in [{lo:.2f}, {hi:.2f}]"
        for j, (lo, hi) in sorted(found.pinned.items())[:3]
    ]
    assert not found.pinned, (
        f"{len(found.pinned)} of {len(small)} small office counts are pinned, e.g. {examples}"
    )
