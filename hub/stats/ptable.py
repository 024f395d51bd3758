"""The perturbation table of the cell key method (Zensus 2022, sdcTools `ptable`, ONS 2021).

Every record carries a uniform key in [0, KEY_SPACE); a cell's key is the sum
of its records' keys mod KEY_SPACE, so the same cell gets the same key and the
same noise in every table it appears in (averaging repeated releases gains
nothing). The table maps (true count, cell key) to the noise d added to the
count; this module only builds and reads that table: no I/O, no randomness.

Construction, for the parameters D (max_noise), V (variance), js:

- Row 0 is noise 0 with probability 1. "Nobody" reveals nothing about a
  person, and a published 0 stays ambiguous because small counts map to 0 too.
- Row i >= 1 has the support S_i = {d : |d| <= D, i + d >= 0, i + d not in
  1..js}: a published count is never 1..js and never negative. From
  top = D + js + 1 on, [i - D, i + D] no longer touches 0..js, so every count
  >= top uses row top. `js < D` is required: then every row i >= 1 has support
  on both sides of 0 (row js + 1 reaches 0 only if js + 1 <= D), so every
  count >= 1 is really perturbed and the noise can have mean 0.
- Each row is the maximum entropy distribution on S_i with mean 0 and
  variance V_i: p_d ∝ exp(a*d + b*d^2). Maximum entropy is the least
  informative choice, spreading probability as evenly as the moments allow;
  mean 0 keeps totals unbiased. (a, b) minimise the convex dual
  log Z(a, b) - b*V_i; a damped Newton method (backtracking, at most
  _MAX_STEPS steps, from the uniform distribution) solves it for u = d / D,
  so the 1e-12 tolerance on the moments is relative to the scale of the noise.
  No convergence is a StatsError, never a silently worse table.
- V_i: a mean-0 distribution on S_i can have any variance in the open interval
  (Vmin, Vmax): Vmax = -lo*hi for the extremes lo, hi of S_i; Vmin = 0 if
  0 is in S_i, else -a*b for the negative a and the positive b nearest 0. At
  either end the distribution collapses onto two points (or onto d = 0), and a
  nearly two-point row lets an attacker rule values out: 1 -> {0: 2/3, 3: 1/3}
  says a published 4 is never a 1. With q = (Vmax - Vmin) / 4 the rule is
      V_i = min(max(V, Vmin + q), Vmax - q)   for rows 1..js (0 not in S_i),
      V_i = min(V, Vmax - q)                  for rows > js (0 in S_i).
  Rows > js may go down to "mostly the true count", that is what a small V
  asks for; rows 1..js can never publish their true count, so they always
  keep the middle half of their range. V above Vmax - q (three quarters of
  D^2 in a full row) is lowered so the inner values keep real weight. With the
  defaults rows 1 and 2 get 2.5 and 3.5, rows 3 and more get V = 1.
- Bounds: the probabilities become upper cumulative bounds in key units:
  exact prefix sums (math.fsum), rounded to 12 digits so a last-bit libm
  difference cannot move a bound in practice, times KEY_SPACE, rounded, then
  forced strictly increasing (every support value keeps at least one key) and
  ending at KEY_SPACE. A value with probability under 2**-32 thus gets
  exactly one key; that shifts the variance by at most sum(d^2)/KEY_SPACE.

Defaults: js = 2 publishes no 1 and no 2, the classic threshold of German
official statistics (numbers under 3 are secret); D = 4 bounds what noise can
do to a total (D = 3, the Zensus anchor, let an attack pin small counts
exactly by combining bounds, docs/statistics.md); V = 1 keeps the relative
error of counts >= 20 under 5%.

Alternatives not taken: a uniform noise table (no control of the variance),
the sdcTools optimiser (needs a solver library), and the ONS-style two-point
rows for small counts (they rule values out, see above).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from hub.stats.errors import StatsError
from protocol.cellkeys import KEY_SPACE

__all__ = ["KEY_SPACE", "PerturbationParams", "PerturbationTable", "build_table"]
_TOLERANCE = 1e-12
_MAX_STEPS = 200


@dataclass(frozen=True)
class PerturbationParams:
    """D: |published - true| <= D; V: target noise variance; js: no count 1..js is published."""

    max_noise: int = 4
    variance: float = 1.0
    js: int = 2

    def __post_init__(self) -> None:
        d, v, js = self.max_noise, self.variance, self.js
        if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 20:
            raise StatsError("perturbation max_noise must be an integer between 1 and 20")
        if isinstance(js, bool) or not isinstance(js, int) or not 0 <= js <= 20:
            raise StatsError("perturbation js must be an integer between 0 and 20")
        if js >= d:
            raise StatsError("perturbation js must be smaller than max_noise")
        if (
            isinstance(v, bool)
            or not isinstance(v, int | float)
            or not math.isfinite(v)
            or not 0 < v <= d * d
        ):
            raise StatsError("perturbation variance must be a number above 0, at most max_noise**2")


@dataclass(frozen=True)
class PerturbationTable:
    """rows[i]: ((noise, upper cumulative bound), ...) for count i; the last row: top and more."""

    params: PerturbationParams
    rows: tuple[tuple[tuple[int, int], ...], ...]
    # The rows split into their bounds and noises, for `noise` (a number of every
    # published table is looked up here: a bisection without a key function).
    _bounds: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)
    _noises: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bounds = tuple(tuple(bound for _, bound in row) for row in self.rows)
        noises = tuple(tuple(d for d, _ in row) for row in self.rows)
        object.__setattr__(self, "_bounds", bounds)
        object.__setattr__(self, "_noises", noises)

    @property
    def top(self) -> int:
        return len(self.rows) - 1

    def noise(self, count: int, cell_key: int) -> int:
        """The noise for a cell: the d of the first bound above its key."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise StatsError("a perturbed count must be a non-negative integer")
        if isinstance(cell_key, bool) or not isinstance(cell_key, int):
            raise StatsError("a cell key must be an integer")
        if not 0 <= cell_key < KEY_SPACE:
            raise StatsError("a cell key must be in [0, KEY_SPACE)")
        row = min(count, len(self.rows) - 1)
        return self._noises[row][bisect.bisect_right(self._bounds[row], cell_key)]

    def perturb(self, count: int, cell_key: int) -> int:
        """The published count: never negative, never 1..js, 0 stays 0."""
        return count + self.noise(count, cell_key)

    def distribution(self, count: int) -> dict[int, float]:
        """Published value -> probability for a true count, exactly as the key bounds give it."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise StatsError("a perturbed count must be a non-negative integer")
        result: dict[int, float] = {}
        previous = 0
        for d, bound in self.rows[min(count, self.top)]:
            result[count + d] = (bound - previous) / KEY_SPACE
            previous = bound
        return result

    def as_rows(self) -> list[dict[str, object]]:
        """The table as published: one entry per count, the last one meaning "top and more"."""
        out: list[dict[str, object]] = []
        for i, row in enumerate(self.rows):
            dist = self.distribution(i)
            published = [
                {"value": i + d, "noise": d, "probability": round(dist[i + d], 6)} for d, _ in row
            ]
            out.append({"count": i, "and_more": i == self.top, "published": published})
        return out


def _support(i: int, params: PerturbationParams) -> list[int]:
    d, js = params.max_noise, params.js
    if i == 0:
        return [0]
    return [n for n in range(-d, d + 1) if i + n >= 0 and not 1 <= i + n <= js]


def _target_variance(support: list[int], variance: float) -> float:
    """V_i of the module docstring; StatsError if no mean-0 spread exists on the support."""
    negative = [n for n in support if n < 0]
    positive = [n for n in support if n > 0]
    if not negative or not positive:
        raise StatsError("perturbation parameters leave a row without noise on both sides")
    vmax = float(-support[0] * support[-1])
    vmin = 0.0 if 0 in support else float(-negative[-1] * positive[0])
    quarter = (vmax - vmin) / 4
    if vmin > 0:
        return min(max(variance, vmin + quarter), vmax - quarter)
    return min(variance, vmax - quarter)


def _weights(us: list[float], a: float, b: float) -> tuple[list[float], float]:
    """Probabilities ∝ exp(a*u + b*u^2) and log Z, shifted so no exp overflows."""
    exponents = [a * u + b * u * u for u in us]
    shift = max(exponents)
    w = [math.exp(e - shift) for e in exponents]
    z = math.fsum(w)
    return [x / z for x in w], shift + math.log(z)


def _max_entropy(support: list[int], variance: float, scale: int) -> list[float]:
    """Maximum entropy probabilities on `support` with mean 0 and the given variance."""
    us = [n / scale for n in support]
    target = variance / (scale * scale)
    a = b = 0.0
    for _ in range(_MAX_STEPS):
        p, log_z = _weights(us, a, b)
        pairs = list(zip(p, us, strict=True))
        m1, m2, m3, m4 = (math.fsum(pi * u**k for pi, u in pairs) for k in (1, 2, 3, 4))
        g1, g2 = m1, m2 - target
        if abs(g1) <= _TOLERANCE and abs(g2) <= _TOLERANCE:
            return p
        # The Hessian of the dual is the covariance matrix of (u, u^2).
        h11, h12, h22 = m2 - m1 * m1, m3 - m1 * m2, m4 - m2 * m2
        det = h11 * h22 - h12 * h12
        if not det > 0:
            break
        s1 = -(h22 * g1 - h12 * g2) / det
        s2 = -(h11 * g2 - h12 * g1) / det
        decrement = -(g1 * s1 + g2 * s2)
        t = 1.0
        # Near the optimum the decrease is below float resolution: take the full step there.
        if decrement > 1e-8:
            value = log_z - b * target
            while t > 1e-10:
                _, trial = _weights(us, a + t * s1, b + t * s2)
                if trial - (b + t * s2) * target <= value - 1e-4 * t * decrement:
                    break
                t /= 2
        a, b = a + t * s1, b + t * s2
    raise StatsError("perturbation table: the variance solver did not converge")


def _bounds(support: list[int], probabilities: list[float]) -> tuple[tuple[int, int], ...]:
    m = len(support)
    bounds: list[int] = []
    for k in range(m):
        cumulative = round(math.fsum(probabilities[: k + 1]), 12)
        bound = round(cumulative * KEY_SPACE)
        lowest = bounds[-1] + 1 if bounds else 1
        bounds.append(min(max(bound, lowest), KEY_SPACE - (m - 1 - k)))
    bounds[-1] = KEY_SPACE
    return tuple(zip(support, bounds, strict=True))


def build_table(params: PerturbationParams) -> PerturbationTable:
    """The perturbation table for `params`; the same params give the same table, bit for bit."""
    top = params.max_noise + params.js + 1
    rows: list[tuple[tuple[int, int], ...]] = [((0, KEY_SPACE),)]
    for i in range(1, top + 1):
        support = _support(i, params)
        target = _target_variance(support, float(params.variance))
        rows.append(_bounds(support, _max_entropy(support, target, params.max_noise)))
    return PerturbationTable(params=params, rows=tuple(rows))
