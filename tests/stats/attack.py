"""A reconstruction attack on the coordinator API, and the synthetic offices it attacks.

What the tester did to the suppression tables, done generically: fetch every
table of a period (all scopes, all shapes, months and their quarter), write
each published number as a linear equation over the office-level counts it
sums, add what an attacker knows for certain (additive dimensions partition
their margin, the quarter of an additive measure is the sum of its months,
counts are >= 0), and solve.

* Attacker A treats every published number as exact (what broke suppression):
  it finds the counts the equations pin down (a count is determined iff its
  unit vector lies in the row space) and reads their least-squares values.
* Attacker B estimates all counts by least squares, the exact relations
  weighted heavily, and is told which numbers are 1..js: it only has to say which.
* The baseline knows only the published perturbation table and the one
  published number, and is told the same: it picks the likelier small count.
* Certainty: with the perturbation table's support, each published y bounds
  its true sum to the counts that can produce y; linear programming over
  all of it gives each count's interval.

Only the fixture half (`make_offices`, `office_reports`) knows the true counts;
the attacker half uses published numbers and public knowledge only.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import lsqr, spsolve

from node.stats.compute import compute
from node.stats.facts import CaseFact, ContactFact, Facts, ReferralFact
from node.stats.periods import parse_period
from protocol import codes
from protocol.payloads import StatsReport

Dims = tuple[tuple[str, str], ...]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

# --- the fixture: synthetic offices with few cases ---------------------------------

MONTHS = ("2026-07", "2026-08", "2026-09")
QUARTER = "2026-Q3"
PERIODS = (*MONTHS, QUARTER)
# Office name -> organisation: three organisations, one of them with a single office.
OFFICES = (
    ("Caritas Nord", "Caritas"),
    ("Caritas Sued", "Caritas"),
    ("Caritas West", "Caritas"),
    ("Diakonie Ost", "Diakonie"),
    ("Diakonie Mitte", "Diakonie"),
    ("AWO Hafen", "AWO"),
)
_GENDERS = ("female", "male", "diverse", None)
_RESIDENCES = (*sorted(codes.RESIDENCE - {"unknown"}), None)
_NATIONALITIES = ("SY", "UA", "TR", "AF", None)


@dataclass(frozen=True)
class OfficeData:
    """One synthetic office: its name, organisation and case store facts."""

    name: str
    org: str
    facts: Facts


def _day(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


def make_facts(rng: random.Random, prefix: str) -> Facts:
    """3 to 12 cases, most of them active in the third quarter, a few contacts and referrals."""
    q_start, q_end = dt.date(2026, 7, 1), dt.date(2026, 9, 30)
    cases: dict[str, CaseFact] = {}
    contacts: list[ContactFact] = []
    referrals: list[ReferralFact] = []
    for i in range(rng.randint(3, 12)):
        cid = f"{prefix}-case-{i}"
        opened = _day(rng, dt.date(2026, 1, 1), dt.date(2026, 9, 25))
        closed = None
        if rng.random() < 0.35:
            closed = _day(rng, max(opened, q_start), q_end)
        case_type = rng.choice(sorted(codes.CASE_TYPE))
        cases[cid] = CaseFact(
            case_id=cid,
            opened=opened.isoformat(),
            closed=closed.isoformat() if closed else None,
            case_type=case_type,
            closure_reason=rng.choice(sorted(codes.CLOSURE)) if closed else None,
            birth_year=None if rng.random() < 0.1 else rng.randint(1950, 2008),
            gender=rng.choice(_GENDERS),
            nationality=rng.choice(_NATIONALITIES),
            residence=rng.choice(_RESIDENCES),
            entry_month=None if rng.random() < 0.1 else f"{rng.randint(2015, 2026)}-01",
            family_members=rng.randint(0, 4),
            topics=tuple(sorted(rng.sample(sorted(codes.TOPIC), rng.randint(0, 3)))),
            first_agreement=opened.isoformat() if case_type == "case_management" else None,
        )
        last = min(closed or q_end, q_end)
        for j in range(rng.randint(0, 4)):
            if last >= q_start:
                contacts.append(
                    ContactFact(
                        contact_id=f"{cid}-contact-{j}",
                        case_id=cid,
                        date=_day(rng, max(opened, q_start), last).isoformat(),
                        channel=rng.choice(sorted(codes.CONTACT_CHANNEL)),
                    )
                )
        if rng.random() < 0.4:
            sent = _day(rng, q_start, q_end)
            referrals.append(
                ReferralFact(
                    referral_id=f"{cid}-referral",
                    case_id=cid,
                    target=rng.choice(sorted(codes.REFERRAL_TARGET)),
                    sent=sent.isoformat(),
                    accepted=sent.isoformat() if rng.random() < 0.5 else None,
                    sent_in_error=False,
                )
            )
    return Facts(
        cases=cases,
        contacts=tuple(contacts),
        referrals=tuple(referrals),
        secret=rng.randbytes(32),
    )


def make_offices(seed: int) -> list[OfficeData]:
    """The six offices of OFFICES with seeded random facts."""
    rng = random.Random(seed)
    return [
        OfficeData(name, org, make_facts(rng, f"o{i}")) for i, (name, org) in enumerate(OFFICES)
    ]


def office_reports(facts: Facts, generated: int) -> dict[str, StatsReport]:
    """The office's real reports (node.stats.compute) of the four periods, revision 1."""
    return {
        p: StatsReport(
            period=p, revision=1, generated=generated, cells=compute(facts, parse_period(p))
        )
        for p in PERIODS
    }


# --- what the attacker fetches ----------------------------------------------------

# Additive measures: a period's count is the sum of its months' counts, cell by cell.
ADDITIVE_MEASURES = frozenset(
    {"contacts", "cases_new", "cases_closed", "referrals_sent", "referrals_accepted"}
)
# Dimensions whose values do not partition a count (a case has several topics).
NON_ADDITIVE_DIMS = frozenset({"topic"})
# Crossings as of the period's last day that move within a quarter: a case's
# length of stay in July differs from the one at the end of September, so
# for these the quarter is not the sum of its months.
MOVING_DIMS = frozenset({"length_of_stay"})
CROSSINGS = ("gender", "age_band", "residence", "topic")


def dimensions(measure: str) -> tuple[str, ...]:
    """The dimensions attacked for `measure`: CROSSINGS and the measure's breakdown."""
    breakdown = codes.MEASURES[measure]
    return CROSSINGS + ((breakdown[0],) if breakdown else ())


@dataclass(frozen=True, order=True)
class SumKey:
    """What one published number sums: the office-level counts of (period, office,
    measure, dims) over the offices in `offices`."""

    period: str
    offices: tuple[str, ...]  # sorted
    measure: str
    dims: Dims


def _dims(*pairs: tuple[str, str]) -> Dims:
    return tuple(sorted(pairs))


def table_queries(period: str, measure: str, scope: str, grouped: bool) -> list[dict[str, str]]:
    """Every table shape of one scope: total, rows=D, rows=D1&cols=D2, and (`grouped`)
    rows=organisation and rows=office, alone and with cols=D."""
    dims = dimensions(measure)
    base = {"period": period, "measure": measure, "scope": scope}
    shapes: list[dict[str, str]] = [{}]
    shapes += [{"rows": d} for d in dims]
    shapes += [{"rows": a, "cols": b} for a, b in itertools.combinations(dims, 2)]
    if grouped:
        for group in ("organisation", "office"):
            shapes += [{"rows": group}] + [{"rows": group, "cols": d} for d in dims]
    return [{**base, **s} for s in shapes]


def source_of(query: Mapping[str, str]) -> str:
    """A table's shape and scope as text: `scope=region&rows=gender&cols=age_band`."""
    return "&".join(f"{k}={query[k]}" for k in ("scope", "rows", "cols") if k in query)


@dataclass
class Published:
    """Every number the attacker has read, by what it sums; `sources`: the queries
    (scope, rows, cols) of the tables it was read from."""

    values: dict[SumKey, int | None] = field(default_factory=dict)
    sources: dict[SumKey, set[str]] = field(default_factory=dict)
    conflicts: list[tuple[SumKey, int | None, int | None]] = field(default_factory=list)
    tables: int = 0

    def add(self, key: SumKey, value: int | None, source: str) -> None:
        self.sources.setdefault(key, set()).add(source)
        if key not in self.values:
            self.values[key] = value
            return
        held = self.values[key]
        if held != value:
            self.conflicts.append((key, held, value))
            if held is None:  # suppressed in one table, published in another
                self.values[key] = value

    def read(
        self, doc: Mapping[str, Any], scope: Sequence[str], orgs: Mapping[str, str], source: str
    ) -> None:
        """Record every number of one table JSON; `scope` lists its offices."""
        self.tables += 1
        period, measure = doc["period"], doc["measure"]
        rows, cols = doc["rows"], doc["cols"]
        everyone = tuple(sorted(scope))

        def key(offices: Iterable[str], *pairs: tuple[str, str]) -> SumKey:
            return SumKey(period, tuple(sorted(offices)), measure, _dims(*pairs))

        def group(label: str) -> tuple[str, ...]:
            if rows == "office":
                return (label,)
            return tuple(o for o in everyone if orgs[o] == label)

        self.add(key(everyone), doc["total"]["value"], source)
        for c, label in enumerate(doc["col_labels"]):
            self.add(key(everyone, (cols, label)), doc["col_totals"][c]["value"], source)
        for r, label in enumerate(doc["row_labels"]):
            row_pair: Dims
            if rows in ("office", "organisation"):
                units, row_pair = group(label), ()
            else:
                units, row_pair = everyone, ((rows, label),)
            self.add(key(units, *row_pair), doc["row_totals"][r]["value"], source)
            for c, col in enumerate(doc["col_labels"]):
                self.add(key(units, *row_pair, (cols, col)), doc["cells"][r][c]["value"], source)


async def fetch_all(
    get_json: Callable[[str], Awaitable[Any]], measures: Sequence[str], concurrency: int = 8
) -> Published:
    """Every table of PERIODS for `measures` in every scope the API offers: the region,
    each organisation, each office; offices and organisations come from
    /coordinator/v1/offices, as an attacker would get them.

    Rows by organisation and by office are read for the region only: within an
    organisation they repeat numbers the region's tables by office and the
    organisation's own tables already show.
    """
    offices = (await get_json("/coordinator/v1/offices"))["offices"]
    orgs = {o["office"]: o["organisation"] for o in offices}
    region = sorted(orgs)
    scopes: list[tuple[str, list[str]]] = [("region", region)]
    scopes += [
        (f"organisation:{k}", [o for o in region if orgs[o] == k])
        for k in sorted(set(orgs.values()))
    ]
    scopes += [(f"office:{o}", [o]) for o in region]
    out = Published()
    # Period by period, so the hub's per-period cache is not thrashed.
    for period in PERIODS:
        for scope, members in scopes:
            for measure in measures:
                for query in table_queries(period, measure, scope, scope == "region"):
                    doc = await get_json("/coordinator/v1/tables?" + urlencode(query))
                    out.read(doc, members, orgs, source_of(query))
    return out


# --- public knowledge: the published perturbation table ---------------------------


@dataclass(frozen=True)
class Noise:
    """The published perturbation table: P(published | true) and which true counts
    can produce a published number."""

    js: int
    max_noise: int
    rows: tuple[dict[int, float], ...]  # rows[n]: published -> probability; last: n >= top

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Noise:
        rows = tuple(
            {int(p["value"]) - int(r["count"]): float(p["probability"]) for p in r["published"]}
            for r in doc["table"]
        )
        return cls(js=int(doc["js"]), max_noise=int(doc["max_noise"]), rows=rows)

    def distribution(self, n: int) -> dict[int, float]:
        """Published value -> probability for true count n (support listed even if tiny)."""
        row = self.rows[min(n, len(self.rows) - 1)]
        return {n + d: p for d, p in row.items()}

    def possible(self, y: int) -> tuple[int, int]:
        """The least and greatest true count that can be published as y (a range: checked)."""
        found = [n for n in range(y + self.max_noise + 1) if y in self.distribution(n)]
        assert found == list(range(found[0], found[-1] + 1)), f"gap in the counts behind {y}"
        return found[0], found[-1]

    def guess(self, y: int) -> int:
        """The baseline: the small count 1..js likeliest to be published as y (ties: smaller)."""
        small = range(1, self.js + 1)
        return max(small, key=lambda n: (self.distribution(n).get(y, 0.0), -n))

    def nearest_small(self, estimate: float) -> int:
        """The small count 1..js nearest to an estimate (ties: smaller)."""
        return min(range(1, self.js + 1), key=lambda n: (abs(n - estimate), n))


# --- the linear system ------------------------------------------------------------

VarKey = tuple[str, str, str, Dims]  # period, office, measure, dims


@dataclass
class System:
    """Office-level counts as variables; published numbers and exact relations as rows."""

    variables: list[VarKey]
    index: dict[VarKey, int]
    sums: list[SumKey]  # published numbers with a value
    values: Floats  # their published values
    covers: Any  # sparse (len(sums) x variables): 1 where a number sums a count
    relations: Any  # sparse (relations x variables): each row sums to 0

    @property
    def size(self) -> int:
        return len(self.variables)


def _relation_rows(index: Mapping[VarKey, int]) -> list[dict[int, float]]:
    """Margins of additive dimensions and months of additive measures, where the
    crossing exists among the variables."""
    rows: list[dict[int, float]] = []
    groups: dict[tuple[str, str, str], set[Dims]] = {}
    for period, office, measure, dims in index:
        groups.setdefault((period, office, measure), set()).add(dims)
    for (period, office, measure), present in groups.items():
        codes_of: dict[str, list[str]] = {}
        for dims in present:
            if len(dims) == 1:
                codes_of.setdefault(dims[0][0], []).append(dims[0][1])
        for parent in present:
            if len(parent) > 1:
                continue
            for dim, values in codes_of.items():
                if dim in NON_ADDITIVE_DIMS or dim in {d for d, _ in parent}:
                    continue
                children = [_dims(*parent, (dim, v)) for v in values]
                if not all(c in present for c in children):
                    continue
                row = {index[(period, office, measure, c)]: 1.0 for c in children}
                row[index[(period, office, measure, parent)]] = -1.0
                rows.append(row)
    for (period, office, measure), present in groups.items():
        if period != QUARTER or measure not in ADDITIVE_MEASURES:
            continue
        for dims in present:
            if {d for d, _ in dims} & MOVING_DIMS:
                continue
            months = [(m, office, measure, dims) for m in MONTHS]
            if all(k in index for k in months):
                row = {index[k]: -1.0 for k in months}
                row[index[(period, office, measure, dims)]] = 1.0
                rows.append(row)
    return rows


def _matrix(rows: Sequence[Mapping[int, float]], n: int) -> Any:
    data, ri, ci = [], [], []
    for r, row in enumerate(rows):
        for c, v in row.items():
            ri.append(r)
            ci.append(c)
            data.append(v)
    return sp.csr_matrix((data, (ri, ci)), shape=(len(rows), n))


def build_system(published: Published) -> System:
    """Variables for every office-level count a read number sums (zeros included)."""
    variables = sorted(
        {(k.period, o, k.measure, k.dims) for k in published.values for o in k.offices}
    )
    index = {v: i for i, v in enumerate(variables)}
    sums = sorted(k for k, v in published.values.items() if v is not None)
    covers = _matrix(
        [{index[(k.period, o, k.measure, k.dims)]: 1.0 for o in k.offices} for k in sums],
        len(variables),
    )
    values = np.array([published.values[k] for k in sums], dtype=np.float64)
    return System(
        variables, index, sums, values, covers, _matrix(_relation_rows(index), len(variables))
    )


# --- attacker B: least squares ----------------------------------------------------

RELATION_WEIGHT = 1000.0


def least_squares(system: System) -> Floats:
    """argmin ||covers x - values||^2 + w^2 ||relations x||^2, clipped at 0."""
    p, r = system.covers, system.relations
    normal = (p.T @ p + RELATION_WEIGHT**2 * (r.T @ r)).tocsc()
    x = np.asarray(
        spsolve(normal, p.T @ system.values, permc_spec="MMD_AT_PLUS_A"), dtype=np.float64
    )
    clipped: Floats = np.clip(x, 0.0, None)
    return clipped


# --- attacker A: exact solving ----------------------------------------------------


def determined(system: System, tol: float = 1e-8) -> Bools:
    """Counts whose unit vector lies in the row space of numbers and relations.

    First peel rows with one undetermined count left, then, per connected block
    of what remains, test against a nullspace basis (dense SVD).
    """
    m = sp.vstack([system.covers, system.relations]).tocsr()
    known = np.zeros(system.size, dtype=bool)
    changed = True
    while changed:
        open_ = m[:, ~known]
        left = np.diff(open_.indptr)
        single = np.flatnonzero(left == 1)
        cols = np.flatnonzero(~known)[open_[single].indices]
        changed = bool(cols.size) and not known[cols].all()
        known[cols] = True
    rest = np.flatnonzero(~known)
    if rest.size == 0:
        return known
    sub = m[:, rest]
    sub = sub[np.diff(sub.tocsr().indptr) > 0]
    graph = sp.bmat([[None, sub], [sub.T, None]]).tocsr()
    _, labels = connected_components(graph, directed=False)
    col_labels = labels[sub.shape[0] :]
    row_labels = labels[: sub.shape[0]]
    for block in np.unique(col_labels):
        cols = np.flatnonzero(col_labels == block)
        rows = np.flatnonzero(row_labels == block)
        if rows.size == 0:
            continue
        dense = sub[rows][:, cols].toarray()
        _, s, vt = np.linalg.svd(dense)
        rank = int((s > tol * max(1.0, s[0] if s.size else 1.0)).sum())
        null = vt[rank:]
        pinned = np.linalg.norm(null, axis=0) < 1e-6 if null.size else np.ones(cols.size, bool)
        known[rest[cols[pinned]]] = True
    return known


def exact_values(system: System) -> Floats:
    """A least-squares solution treating numbers and relations alike as exact equations
    (unique on the determined counts)."""
    m = sp.vstack([system.covers, system.relations]).tocsr()
    b = np.concatenate([system.values, np.zeros(system.relations.shape[0])])
    return np.asarray(lsqr(m, b, atol=1e-12, btol=1e-12, iter_lim=20_000)[0], dtype=np.float64)


# --- certainty: intervals by linear programming -----------------------------------


@dataclass(frozen=True)
class Bounds:
    """The attacker's feasible set: lo <= covers x <= hi, relations x = 0, x >= 0,
    lo and hi the least and greatest true sum that can be published as the number."""

    lo: Floats
    hi: Floats


def bounds(system: System, noise: Noise) -> Bounds:
    pairs = [noise.possible(int(y)) for y in system.values]
    return Bounds(
        np.array([a for a, _ in pairs], dtype=np.float64),
        np.array([b for _, b in pairs], dtype=np.float64),
    )


_EPS = 1e-6
Ints = npt.NDArray[np.int64]


class _LP:
    """The feasible set over the counts `cols`, either restricted (every other count
    fixed at `truth`: a subset of the attacker's set) or relaxed (only the rows
    within `cols`: a superset)."""

    def __init__(
        self, system: System, box: Bounds, cols: Ints, truth: Floats, *, restrict: bool
    ) -> None:
        self.n = cols.size
        others = truth.copy()
        others[cols] = 0.0
        covers, rel = system.covers, system.relations
        cov = self._rows(covers, cols, restrict)
        offset = covers[cov] @ others if restrict else np.zeros(cov.size)
        lo, hi = box.lo[cov] - offset, box.hi[cov] - offset
        sub = covers[cov][:, cols].tocsr()
        single = np.diff(sub.indptr) == 1
        self.lo = np.zeros(self.n)
        self.hi = np.full(self.n, np.inf)
        at = sub[single].indices
        np.maximum.at(self.lo, at, lo[single])
        np.minimum.at(self.hi, at, hi[single])
        multi = sub[~single]
        self.a_ub = sp.vstack([multi, -multi]).tocsr()
        self.b_ub = np.concatenate([hi[~single], -lo[~single]])
        eq = self._rows(rel, cols, restrict)
        self.a_eq = rel[eq][:, cols].tocsr()
        self.b_eq = -(rel[eq] @ others) if restrict else np.zeros(eq.size)

    @staticmethod
    def _rows(m: Any, cols: Ints, restrict: bool) -> Ints:
        """Rows touching `cols` (restricted) or lying within them (relaxed)."""
        inside = np.diff(m[:, cols].tocsr().indptr)
        keep = inside > 0 if restrict else (inside > 0) & (inside == np.diff(m.indptr))
        return np.flatnonzero(keep)

    def _solve(self, c: Floats, extra: Any = None, extra_b: Any = None, k: int = 0) -> Floats:
        a_ub, b_ub = self.a_ub, self.b_ub
        if k:
            a_ub = sp.vstack([sp.hstack([a_ub, sp.csr_matrix((a_ub.shape[0], k))]), extra])
            b_ub = np.concatenate([b_ub, extra_b])
        a_eq = sp.hstack([self.a_eq, sp.csr_matrix((self.a_eq.shape[0], k))]).tocsr()
        box = np.column_stack(
            [np.concatenate([self.lo, np.full(k, -np.inf)]), np.concatenate([self.hi, np.ones(k)])]
        )
        res = linprog(
            c,
            A_ub=a_ub if a_ub.shape[0] else None,
            b_ub=b_ub if a_ub.shape[0] else None,
            A_eq=a_eq if a_eq.shape[0] else None,
            b_eq=self.b_eq if a_eq.shape[0] else None,
            bounds=box,
            method="highs",
        )
        if res.status == 3:  # unbounded: only where a count has no published bound
            return np.full(self.n, np.nan)
        assert res.status == 0, res.message
        return np.asarray(res.x[: self.n], dtype=np.float64)

    def interval(self, j: int) -> tuple[float, float]:
        """min and max of local count j (infinite where unbounded)."""
        c = np.zeros(self.n)
        c[j] = 1.0
        lo, hi = float(self._solve(c)[j]), float(self._solve(-c)[j])
        return (-np.inf if np.isnan(lo) else lo), (np.inf if np.isnan(hi) else hi)

    def moved(self, targets: Ints, truth: Floats, up: bool) -> Bools:
        """Targets one LP moves by >= 1 from their truth (up or down): maximise
        sum s_j with s_j <= 1 and s_j <= +-(x_j - t_j)."""
        k = targets.size
        sign = 1.0 if up else -1.0
        link = sp.hstack(
            [
                sp.csr_matrix((np.full(k, -sign), (np.arange(k), targets)), shape=(k, self.n)),
                sp.identity(k, format="csr"),
            ]
        ).tocsr()
        c = np.concatenate([np.zeros(self.n), -np.ones(k)])
        x = self._solve(c, link, -sign * truth[targets], k)
        moved: Bools = sign * (x[targets] - truth[targets]) >= 1 - _EPS
        return moved


def _components(m: Any) -> Ints:
    """Connected components of counts sharing a row of `m`."""
    _, labels = connected_components((m.T @ m).tocsr(), directed=False)
    return np.asarray(labels, dtype=np.int64)


def _shake(lp: _LP, open_: Ints, truth: Floats) -> Ints:
    """Move targets up and down in turns until two LPs in a row move none; the rest."""
    up, idle = True, 0
    while open_.size and idle < 2:
        moved = lp.moved(open_, truth, up)
        idle = 0 if moved.any() else idle + 1
        open_, up = open_[~moved], not up
    return open_


@dataclass(frozen=True)
class Certainty:
    """Target counts whose feasible interval holds one integer, with the interval;
    `full_lps`: counts that needed LPs over their whole block."""

    pinned: dict[int, tuple[float, float]]
    full_lps: int


def certainty(
    system: System,
    box: Bounds,
    targets: Sequence[int],
    truth: Floats,
    radius: int = 3,
    batch: int = 1000,
) -> Certainty:
    """For each target count: does the attacker's feasible set allow only one integer?

    The truth is feasible, so a feasible point with the count moved by >= 1 shows
    two integers. Such points are sought cheaply first, in each office's counts
    with all others fixed at the truth (a subset of the feasible set). A count
    not moved there may be pinned by the rows within `radius` steps of it alone
    (a superset: then the whole set pins it too); the rest is moved over its
    whole block, or failing that gets its min and max there.
    """
    covers_ok = (box.lo - _EPS <= system.covers @ truth) & (system.covers @ truth <= box.hi + _EPS)
    assert covers_ok.all(), "the truth is outside the published ranges"
    assert np.abs(system.relations @ truth).max(initial=0.0) < _EPS, "a relation is false"
    everything = sp.vstack([system.covers, system.relations]).tocsr()
    blocks = _components(everything)
    local = _components(system.relations.tocsr())
    wanted = np.zeros(system.size, dtype=bool)
    wanted[list(targets)] = True
    open_: list[int] = []
    for cols in _batches(local, wanted, batch):
        lp = _LP(system, box, cols, truth, restrict=True)
        rest = _shake(lp, np.flatnonzero(wanted[cols]), truth[cols])
        open_ += [int(c) for c in cols[rest]]
    pinned: dict[int, tuple[float, float]] = {}
    unsure: list[int] = []
    for j in sorted(open_):
        found = _nearby(system, everything, box, truth, j, radius)
        if found is None:
            unsure.append(j)
        elif isinstance(found, tuple):
            pinned[j] = found
    full = 0
    remaining = np.array(unsure, dtype=np.int64)
    for block in np.unique(blocks[remaining]):
        cols = np.flatnonzero(blocks == block)
        where = {int(c): i for i, c in enumerate(cols)}
        whole = _LP(system, box, cols, truth, restrict=True)
        inside = np.array([where[int(j)] for j in remaining if blocks[j] == block])
        for i in _shake(whole, inside, truth[cols]):
            full += 1
            lo, hi = whole.interval(int(i))
            if _one_integer(lo, hi):
                pinned[int(cols[i])] = (lo, hi)
    return Certainty(pinned, full)


def _batches(labels: Ints, wanted: Bools, size: int) -> Iterable[Ints]:
    """Components holding a wanted count, merged into batches of about `size` counts
    (fewer, larger LPs; freeing several components at once is still a subset)."""
    held: list[Ints] = []
    count = 0
    for part in np.unique(labels[wanted]):
        cols = np.flatnonzero(labels == part)
        if held and count + cols.size > size:
            yield np.sort(np.concatenate(held))
            held, count = [], 0
        held.append(cols)
        count += cols.size
    if held:
        yield np.sort(np.concatenate(held))


def _one_integer(lo: float, hi: float) -> bool:
    return bool(np.floor(hi + _EPS) - np.ceil(lo - _EPS) < 1)


def _nearby(
    system: System, m: Any, box: Bounds, truth: Floats, j: int, radius: int
) -> tuple[float, float] | str | None:
    """Count j's fate decided within `radius` steps of it: its interval if the rows
    there alone allow one integer (then the whole set pins j too), "moves" if j
    moves by 1 with the counts there free and the rest at the truth, else None."""
    near = np.array([j], dtype=np.int64)
    csc = m.tocsc()
    for _ in range(radius):
        rows = np.unique(csc[:, near].indices)
        near = np.union1d(near, m[rows].indices)
        i = np.array([np.searchsorted(near, j)], dtype=np.int64)
        lo, hi = _LP(system, box, near, truth, restrict=False).interval(int(i[0]))
        if _one_integer(lo, hi):
            return lo, hi
        free = _LP(system, box, near, truth, restrict=True)
        if free.moved(i, truth[near], True)[0] or free.moved(i, truth[near], False)[0]:
            return "moves"
    return None


# --- scoring ---------------------------------------------------------------------


def true_sum(key: SumKey, truth: Mapping[VarKey, int]) -> int:
    return sum(truth.get((key.period, o, key.measure, key.dims), 0) for o in key.offices)


@dataclass(frozen=True)
class Guesses:
    """Every published number whose true value is 1..js (office counts and aggregates),
    and whether attacker B and the baseline named it right."""

    keys: list[SumKey]
    b: Bools
    baseline: Bools

    @property
    def office(self) -> Bools:
        return np.array([len(k.offices) == 1 for k in self.keys], dtype=bool)


def guesses(system: System, noise: Noise, truth: Mapping[VarKey, int], estimate: Floats) -> Guesses:
    keys, b, base = [], [], []
    for i, k in enumerate(system.sums):
        t = true_sum(k, truth)
        if not 1 <= t <= noise.js:
            continue
        cols = [system.index[(k.period, o, k.measure, k.dims)] for o in k.offices]
        keys.append(k)
        b.append(noise.nearest_small(float(estimate[cols].sum())) == t)
        base.append(noise.guess(int(system.values[i])) == t)
    return Guesses(keys, np.array(b, dtype=bool), np.array(base, dtype=bool))


@dataclass(frozen=True)
class ExactReads:
    """Attacker A on every office count whose true value is 1..js: whether the
    equations determine it, and whether the value read is exactly right."""

    keys: list[VarKey]
    determined: Bools
    right: Bools


def exact_reads(
    system: System, truth: Mapping[VarKey, int], exact: Floats, pinned: Bools, js: int
) -> ExactReads:
    keys, det, right = [], [], []
    for j, key in enumerate(system.variables):
        t = truth.get(key, 0)
        if 1 <= t <= js:
            keys.append(key)
            det.append(bool(pinned[j]))
            right.append(bool(pinned[j]) and round(float(exact[j])) == t)
    return ExactReads(keys, np.array(det, dtype=bool), np.array(right, dtype=bool))


def truth_of(reports: Mapping[str, Mapping[str, StatsReport]]) -> dict[VarKey, int]:
    """office -> period -> report: the true office-level counts."""
    return {
        (period, office, c.measure, c.ident()[1]): c.count
        for office, by_period in reports.items()
        for period, report in by_period.items()
        for c in report.cells
    }
