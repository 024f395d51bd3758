"""The cell key perturbation table: its guarantees, a pinned default table and key lookups."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.stats.errors import StatsError
from hub.stats.ptable import KEY_SPACE, PerturbationParams, PerturbationTable, build_table

DEFAULT = build_table(PerturbationParams())
# The anchors' table (D=3, V=1, js=2, the Zensus-like setting): pinned literally below.
ANCHOR = build_table(PerturbationParams(max_noise=3))


def support(params: PerturbationParams, count: int) -> list[int]:
    """S_i restated from the docstring: |d| <= D, count + d >= 0, count + d not in 1..js."""
    if count == 0:
        return [0]
    d = params.max_noise
    return [n for n in range(-d, d + 1) if count + n >= 0 and not 1 <= count + n <= params.js]


def expected_variance(params: PerturbationParams, count: int) -> float:
    """V_i restated from the docstring: the middle half (rows 1..js) or under 3/4 of Vmax."""
    s = support(params, count)
    vmax = -s[0] * s[-1]
    vmin = 0 if 0 in s else -max(n for n in s if n < 0) * min(n for n in s if n > 0)
    quarter = (vmax - vmin) / 4
    low = vmin + quarter if vmin > 0 else 0.0
    return min(max(params.variance, low), vmax - quarter)


def noise_moments(table: PerturbationTable, count: int) -> tuple[float, float]:
    """Mean and variance of the noise of a row, from its integer key bounds."""
    probabilities: dict[int, float] = {}
    previous = 0
    for d, bound in table.rows[min(count, table.top)]:
        probabilities[d] = (bound - previous) / KEY_SPACE
        previous = bound
    mean = math.fsum(p * d for d, p in probabilities.items())
    return mean, math.fsum(p * (d - mean) ** 2 for d, p in probabilities.items())


def check_table(table: PerturbationTable) -> None:
    """Every guarantee of the module docstring, checked on one table."""
    params = table.params
    d_max, js = params.max_noise, params.js
    assert table.top == d_max + js + 1
    assert len(table.rows) == table.top + 1
    for count in range(table.top + 6):
        row = table.rows[min(count, table.top)]
        bounds = [b for _, b in row]
        assert bounds[-1] == KEY_SPACE
        assert all(a < b for a, b in zip([0, *bounds], bounds, strict=False))
        assert [n for n, _ in row] == support(params, min(count, table.top))
        dist = table.distribution(count)
        assert math.isclose(math.fsum(dist.values()), 1.0, abs_tol=1e-15)
        assert all(p > 0 for p in dist.values())
        for value in dist:
            assert abs(value - count) <= d_max
            assert value >= 0
            assert not 1 <= value <= js
        if count == 0:
            assert dist == {0: 1.0}
            continue
        mean, variance = noise_moments(table, count)
        assert abs(mean) <= 1e-6
        # Rounding to keys, and one key for values rarer than 2**-32, add up to sum(d^2) keys.
        slack = 1e-6 + sum(n * n for n in row_noise(table, count)) / KEY_SPACE
        assert abs(variance - expected_variance(params, min(count, table.top))) <= slack


def row_noise(table: PerturbationTable, count: int) -> list[int]:
    """The noise values of the row used for `count`."""
    return [n for n, _ in table.rows[min(count, table.top)]]


def test_default_table_keeps_every_guarantee() -> None:
    """Defaults: mean 0, |noise| <= 4, no 1 or 2 published, zero stays zero, V as documented."""
    assert DEFAULT.params == PerturbationParams(max_noise=4, variance=1.0, js=2)
    check_table(DEFAULT)
    check_table(ANCHOR)


def test_default_variances_are_the_documented_ones() -> None:
    """Rows 1 and 2 get a quarter into their range (2.5 and 3.5 with D=4; 2.25 and 3
    with D=3), rows 3 and more get V = 1."""
    expected = {1: 2.5, 2: 3.5, 3: 1.0, 4: 1.0, 5: 1.0, 6: 1.0, 7: 1.0, 50: 1.0}
    for count, variance in expected.items():
        assert noise_moments(DEFAULT, count)[1] == pytest.approx(variance, abs=1e-6)
    anchor = {1: 2.25, 2: 3.0, 3: 1.0, 6: 1.0}
    for count, variance in anchor.items():
        assert noise_moments(ANCHOR, count)[1] == pytest.approx(variance, abs=1e-6)


params_strategy = st.integers(min_value=1, max_value=20).flatmap(
    lambda d: st.builds(
        PerturbationParams,
        max_noise=st.just(d),
        variance=st.floats(min_value=0, max_value=d * d, exclude_min=True),
        js=st.integers(min_value=0, max_value=d - 1),
    )
)


@settings(max_examples=60, deadline=None)
@given(params_strategy)
def test_every_valid_table_keeps_every_guarantee(params: PerturbationParams) -> None:
    """Any valid D, V, js: the same guarantees as the default table."""
    check_table(build_table(params))


def test_build_is_deterministic() -> None:
    """Building twice gives equal tables and byte-equal publications."""
    params = PerturbationParams(max_noise=5, variance=2.5, js=3)
    first, second = build_table(params), build_table(params)
    assert first == second
    assert json.dumps(first.as_rows()) == json.dumps(second.as_rows())
    assert build_table(PerturbationParams()) == DEFAULT


def test_anchor_table_is_pinned() -> None:
    """The D=3 table's bounds and probabilities, literally, so a changed construction shows."""
    assert ANCHOR.rows[0] == ((0, KEY_SPACE),)
    # Row 1 has three values, so mean and variance 2.25 fix it: 11/16, 4/16, 1/16.
    assert ANCHOR.rows[1] == ((-1, 2952790016), (2, 4026531840), (3, KEY_SPACE))
    assert ANCHOR.rows[2] == (
        (-2, 1762349040),
        (1, 3466211476),
        (2, 4131643294),
        (3, KEY_SPACE),
    )
    rounded = {v: round(p, 6) for v, p in ANCHOR.distribution(6).items()}
    assert rounded == {
        3: 0.004508,
        4: 0.054347,
        5: 0.242037,
        6: 0.398215,
        7: 0.242037,
        8: 0.054347,
        9: 0.004508,
    }
    assert ANCHOR.distribution(1) == {0: 0.6875, 3: 0.25, 4: 0.0625}


def test_noise_over_evenly_spread_keys_matches_distribution() -> None:
    """200,000 evenly spaced keys per row hit each published value as often as distribution says."""
    n = 200_000
    keys = [j * KEY_SPACE // n for j in range(n)]
    for count in range(DEFAULT.top + 1):
        seen: dict[int, int] = {}
        for key in keys:
            value = DEFAULT.perturb(count, key)
            seen[value] = seen.get(value, 0) + 1
        dist = DEFAULT.distribution(count)
        assert set(seen) == set(dist)
        for value, p in dist.items():
            assert abs(seen[value] / n - p) <= 1e-4


def test_lowest_and_highest_key_work() -> None:
    """Key 0 gets the first noise value of a row and KEY_SPACE - 1 the last."""
    for count in range(DEFAULT.top + 3):
        row = DEFAULT.rows[min(count, DEFAULT.top)]
        assert DEFAULT.noise(count, 0) == row[0][0]
        assert DEFAULT.noise(count, KEY_SPACE - 1) == row[-1][0]
    assert DEFAULT.perturb(0, KEY_SPACE - 1) == 0
    assert DEFAULT.perturb(1, 0) == 0


def test_bound_itself_belongs_to_the_next_value() -> None:
    """A key equal to a bound gets the next value: the first bound b with key < b decides."""
    (d1, b1), (d2, _), _ = ANCHOR.rows[1]
    assert ANCHOR.noise(1, b1 - 1) == d1
    assert ANCHOR.noise(1, b1) == d2


@pytest.mark.parametrize(
    ("count", "key"),
    [(1, KEY_SPACE), (1, -1), (-1, 0), (1, 2**40), (True, 0), (1, 1.5)],
)
def test_bad_count_or_key_is_refused(count: int, key: int) -> None:
    """A key outside [0, KEY_SPACE), a negative or non-integer count raise StatsError."""
    with pytest.raises(StatsError):
        DEFAULT.noise(count, key)
    with pytest.raises(StatsError):
        DEFAULT.perturb(count, key)


def test_distribution_refuses_negative_count() -> None:
    """distribution(-1) is a StatsError, not a silent lookup of the last row."""
    with pytest.raises(StatsError, match="count"):
        DEFAULT.distribution(-1)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_noise": 0}, "max_noise"),
        ({"max_noise": 21}, "max_noise"),
        ({"max_noise": True}, "max_noise"),
        ({"max_noise": 3.0}, "max_noise"),
        ({"js": -1}, "js"),
        ({"js": 4}, "js"),
        ({"js": 5}, "js"),
        ({"js": True}, "js"),
        ({"variance": 0}, "variance"),
        ({"variance": -1.0}, "variance"),
        ({"variance": math.nan}, "variance"),
        ({"variance": math.inf}, "variance"),
        ({"variance": 16.5}, "variance"),
        ({"variance": True}, "variance"),
        ({"variance": "1"}, "variance"),
    ],
)
def test_invalid_params_are_refused_by_name(kwargs: dict[str, object], name: str) -> None:
    """Each invalid parameter raises StatsError with a message naming it."""
    with pytest.raises(StatsError, match=name):
        PerturbationParams(**kwargs)  # type: ignore[arg-type]


def test_integer_variance_and_its_maximum_are_accepted() -> None:
    """variance may be an int and may be max_noise**2 (it is then lowered as documented)."""
    table = build_table(PerturbationParams(max_noise=2, variance=4, js=1))
    check_table(table)
    assert noise_moments(table, table.top)[1] == pytest.approx(3.0, abs=1e-6)


def test_as_rows_is_the_json_publication() -> None:
    """One entry per count 0..top, the last marked "and more", probabilities to 6 digits."""
    rows = ANCHOR.as_rows()
    assert json.loads(json.dumps(rows)) == rows
    assert [r["count"] for r in rows] == list(range(ANCHOR.top + 1))
    assert [r["and_more"] for r in rows] == [False] * ANCHOR.top + [True]
    assert rows[0]["published"] == [{"value": 0, "noise": 0, "probability": 1.0}]
    assert rows[1]["published"] == [
        {"value": 0, "noise": -1, "probability": 0.6875},
        {"value": 3, "noise": 2, "probability": 0.25},
        {"value": 4, "noise": 3, "probability": 0.0625},
    ]
    for r in rows:
        published = r["published"]
        assert isinstance(published, list)
        assert all(e["probability"] == round(e["probability"], 6) for e in published)
