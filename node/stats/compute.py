"""Dataset mbe-core for one period, computed from the case store's facts. Pure.

Definitions (docs/statistics.md, "Node side"):

* a case is *active* in a period when it was open on at least one day of it:
  opened on or before the last day, and not closed or closed on or after the
  first day. *New*: opened in the period. *Closed*: closed in the period, by
  closure reason.
* *case_management_with_agreement*: active case-management cases whose first
  support agreement (Förderplan) is dated on or before the period's last day.
* *contacts*: contacts dated in the period, by channel. *family_members*: the
  sum of `family_members` over the active cases.
* *referrals_sent*: outgoing referrals created in the period; *referrals_accepted*:
  outgoing referrals whose acceptance arrived in the period; both by target
  type, neither counting a referral withdrawn as `sent_in_error` (nor does any
  measure below).
* Unmet need (dataset version 3): *referrals_declined*: outgoing referrals
  whose decline arrived in the period, by target type; *referrals_declined_reason*:
  the same referrals by decline reason; *referrals_answered*: outgoing referrals
  whose answer (acceptance or decline) arrived in the period, by wait band (whole
  calendar days from the sending date to the answer's date); *referrals_unanswered*:
  outgoing referrals waiting at the end of the period's last day (sent by then,
  not answered, expired or withdrawn by then), by how long they had waited then.
* Crossing dimensions describe the case a count belongs to, as of the period's
  last day: age band from the birth year (age = end year - birth year), length
  of stay from the entry month (whole months up to the end month: under 12,
  12 to 35, 36 and more); gender, residence and nationality as recorded, with
  `unknown` / `XX` when empty. A case without topics is in no topic cell, and
  a case with several topics is in each of them (topic is not additive).
* A case without a birth year (entry month) counts in the age band (length
  of stay) `unknown`, so the bands always add up to their margin, which the
  hub checks.

Which cells are sent: every non-zero cell of at most two dimensions, the
measure's breakdown counting as one: the total, by breakdown, by one crossing
dimension, breakdown x crossing dimension, and pairs of crossing dimensions
except pairs with nationality. Those are the tables the hub can build (a table
has rows and columns, so at most two dimensions), and every margin of a sent
cell is a sent cell. Three-way cells (breakdown x two crossings) would multiply
the report without any table reading them. Nationality is an open list (up to
249 codes): its pairs with other crossing dimensions made a 2,000-case office's
year report 16,662 cells and 856 KB, close to both the 20,000-cell limit and
the 1 MiB sealed-message cap, and a bigger office would not fit. Without them
the report has a bound that fits whatever the office's size (docs/statistics.md).
The subset is fixed, never chosen per report: absent means zero at the hub, so
an office sending a cell that another office leaves out would skew every sum.

The measures of unmet need are crossed by one crossing dimension at a time
(alone and with their breakdown) and never by nationality (codes.crossing).
Counted like the other referral measures, the four of them would add 9,700
cells to the largest report: 23,704 cells and 1.4 MB, over both limits. As
they are, the largest report the code lists allow is 14,984 cells and 838 KB
(tests/node_stats/test_unmet_need.py builds it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeGuard

from node.stats.facts import CaseFact, Facts, ReferralFact
from node.stats.periods import Period
from protocol import codes
from protocol.cellkeys import KEY_SPACE, RecordKeys
from protocol.payloads import StatsCell

Feature = tuple[str, str]
CellIdent = tuple[str, tuple[Feature, ...]]

# Crossed with the measure's breakdown, never with another crossing dimension.
SOLO_DIMENSIONS = frozenset({"nationality"})
_UNKNOWN = "unknown"


@dataclass(frozen=True)
class Item:
    """One counted thing: its record (case, contact or referral id, for its cell
    keys), its weight, its breakdown value and its case's features."""

    record: str
    weight: int
    breakdown: Feature | None
    features: tuple[Feature, ...]


def age_band(birth_year: int | None, end: dt.date) -> str:
    if birth_year is None:
        return _UNKNOWN
    age = end.year - birth_year
    if age < 27:
        return "under_27"
    if age < 40:
        return "27_39"
    if age < 60:
        return "40_59"
    return "60_plus"


def length_of_stay(entry_month: str | None, end: dt.date) -> str:
    if entry_month is None:
        return _UNKNOWN
    months = (end.year * 12 + end.month) - (int(entry_month[:4]) * 12 + int(entry_month[5:7]))
    if months < 12:
        return "under_1y"
    if months < 36:
        return "1_to_3y"
    return "over_3y"


def wait_band(since: str, until: str) -> str:
    """Whole calendar days from `since` to `until` (YYYY-MM-DD) as a WAIT_BAND code.

    A later date before an earlier one (a clock set back) waits no time."""
    days = (dt.date.fromisoformat(until) - dt.date.fromisoformat(since)).days
    if days < 1:
        return "same_day"
    if days <= 3:
        return "1_3_days"
    if days <= 7:
        return "4_7_days"
    if days <= 14:
        return "8_14_days"
    return "over_14_days"


def unanswered_on(ref: ReferralFact, day: str) -> bool:
    """Whether `ref` was waiting for its answer at the end of `day`: sent by then,
    neither answered nor expired or withdrawn by then."""
    return ref.sent <= day and all(d is None or d > day for d in (ref.answered, ref.stopped))


def _checked(value: str | None, allowed: frozenset[str], fallback: str) -> str:
    return value if value is not None and value in allowed else fallback


def _is_nationality(value: str | None) -> TypeGuard[str]:
    return codes.is_code(value, codes.NATIONALITY)


def case_features(case: CaseFact | None, end: dt.date) -> tuple[Feature, ...]:
    """The crossing values of a case as of `end`; a missing case is all unknown."""
    if case is None:
        return (
            ("gender", _UNKNOWN),
            ("residence", _UNKNOWN),
            ("nationality", "XX"),
            ("age_band", _UNKNOWN),
            ("length_of_stay", _UNKNOWN),
        )
    out: list[Feature] = [
        ("gender", _checked(case.gender, codes.GENDER, "unknown")),
        ("residence", _checked(case.residence, codes.RESIDENCE, "unknown")),
        ("nationality", case.nationality if _is_nationality(case.nationality) else "XX"),
    ]
    out.append(("age_band", age_band(case.birth_year, end)))
    out.append(("length_of_stay", length_of_stay(case.entry_month, end)))
    out.extend(("topic", t) for t in case.topics if t in codes.TOPIC)
    return tuple(out)


def _within(date: str | None, period: Period) -> bool:
    return date is not None and period.start.isoformat() <= date <= period.end.isoformat()


def _active(case: CaseFact, period: Period) -> bool:
    return case.opened <= period.end.isoformat() and (
        case.closed is None or case.closed >= period.start.isoformat()
    )


def _complete(items: list[Item]) -> list[Item]:
    """Drop, for this measure, every dimension some of its items lack (see above)."""
    dims = {"age_band", "length_of_stay"}
    missing = {d for d in dims if any(all(f[0] != d for f in i.features) for i in items)}
    if not missing:
        return items
    return [
        Item(i.record, i.weight, i.breakdown, tuple(f for f in i.features if f[0] not in missing))
        for i in items
    ]


def measure_items(facts: Facts, period: Period) -> dict[str, list[Item]]:
    """For each measure, the items it counts in `period` (see _complete)."""
    items = _raw_items(facts, period)
    return {m: _complete(v) for m, v in items.items()}


def _raw_items(facts: Facts, period: Period) -> dict[str, list[Item]]:
    end = period.end
    feats = {cid: case_features(c, end) for cid, c in facts.cases.items()}
    unknown = case_features(None, end)
    items: dict[str, list[Item]] = {m: [] for m in codes.MEASURES}
    for cid, case in facts.cases.items():
        f = feats[cid]
        if _within(case.opened, period):
            items["cases_new"].append(Item(cid, 1, None, f))
        if _within(case.closed, period):
            reason = _checked(case.closure_reason, codes.CLOSURE, "other")
            items["cases_closed"].append(Item(cid, 1, ("closure", reason), f))
        if not _active(case, period):
            continue
        items["cases_active"].append(Item(cid, 1, None, f))
        if case.family_members > 0:
            items["family_members"].append(Item(cid, case.family_members, None, f))
        if (
            case.case_type == "case_management"
            and case.first_agreement is not None
            and case.first_agreement <= end.isoformat()
        ):
            items["case_management_with_agreement"].append(Item(cid, 1, None, f))
    for contact in facts.contacts:
        if _within(contact.date, period) and contact.channel in codes.CONTACT_CHANNEL:
            f = feats.get(contact.case_id, unknown)
            items["contacts"].append(Item(contact.contact_id, 1, ("channel", contact.channel), f))
    for ref in facts.referrals:
        if ref.sent_in_error or ref.target not in codes.REFERRAL_TARGET:
            continue
        f = feats.get(ref.case_id, unknown) if ref.case_id is not None else unknown
        target = ("target", ref.target)
        if _within(ref.sent, period):
            items["referrals_sent"].append(Item(ref.referral_id, 1, target, f))
        if _within(ref.accepted, period):
            items["referrals_accepted"].append(Item(ref.referral_id, 1, target, f))
        if _within(ref.declined, period):
            reason = _checked(ref.decline_reason, codes.DECLINE_REASON, "other")
            items["referrals_declined"].append(Item(ref.referral_id, 1, target, f))
            items["referrals_declined_reason"].append(
                Item(ref.referral_id, 1, ("decline_reason", reason), f)
            )
        if ref.answered is not None and _within(ref.answered, period):
            band = ("wait_band", wait_band(ref.sent, ref.answered))
            items["referrals_answered"].append(Item(ref.referral_id, 1, band, f))
        if unanswered_on(ref, end.isoformat()):
            band = ("wait_band", wait_band(ref.sent, end.isoformat()))
            items["referrals_unanswered"].append(Item(ref.referral_id, 1, band, f))
    return items


def _cells_of(
    item: Item, crossing: frozenset[str], max_cross: int
) -> Iterator[tuple[Feature, ...]]:
    """The (sorted) dimension tuples of at most two dimensions this item counts in,
    crossed only by the measure's `crossing` dimensions, at most `max_cross` at once."""
    feats = tuple(f for f in item.features if f[0] in crossing)
    yield ()
    if item.breakdown is not None:
        yield (item.breakdown,)
        for f in feats:
            yield (item.breakdown, f) if item.breakdown < f else (f, item.breakdown)
    for i, a in enumerate(feats):
        yield (a,)
        if a[0] in SOLO_DIMENSIONS or max_cross < 2:
            continue
        for b in feats[i + 1 :]:
            if a[0] == b[0] or b[0] in SOLO_DIMENSIONS:
                continue  # two topics of one case are not a cell
            yield (a, b) if a < b else (b, a)


# Measures that count the same records as another, only broken down otherwise: their
# cells without the breakdown (total, crossings) are keyed as the other measure's, so
# the same records carry the same key and the hub publishes one number for them, not
# two independently perturbed views of it (docs/statistics.md, "Cell keys").
KEYED_AS = {"referrals_declined_reason": "referrals_declined"}


def _cell_name(measure: str, dims: tuple[Feature, ...]) -> str:
    return measure + ":" + ";".join(f"{d}={v}" for d, v in dims)


def _key_name(measure: str, dims: tuple[Feature, ...]) -> str:
    """The cell name its records' keys are made for (see KEYED_AS)."""
    alias = KEYED_AS.get(measure)
    breakdown = codes.MEASURES[measure]
    if alias is not None and breakdown is not None and all(d != breakdown[0] for d, _ in dims):
        return _cell_name(alias, dims)
    return _cell_name(measure, dims)


def count_cells(items: dict[str, list[Item]], keys: RecordKeys) -> dict[CellIdent, tuple[int, int]]:
    """Each non-zero cell's count and cell key (the sum of its records' keys).

    A record's key depends on the cell (protocol.cellkeys), so the hub cannot
    link the cells one client is counted in.
    """
    counts: dict[CellIdent, list[int]] = {}
    for measure, measure_items_ in items.items():
        crossing, max_cross = codes.crossing(measure)
        for item in measure_items_:
            for dims in _cells_of(item, crossing, max_cross):
                cell = (measure, dims)
                acc = counts.get(cell)
                if acc is None:
                    acc = counts[cell] = [0, 0]
                acc[0] += item.weight
                acc[1] += keys.key(_key_name(measure, dims), item.record)
    return {k: (n, key % KEY_SPACE) for k, (n, key) in counts.items() if n > 0}


def to_cells(counts: dict[CellIdent, tuple[int, int]]) -> tuple[StatsCell, ...]:
    """Cells in a canonical order (measure, then dimensions), so equal data hashes equally."""
    return tuple(
        StatsCell(measure=m, dims=dict(dims), count=n, cell_key=key)
        for (m, dims), (n, key) in sorted(counts.items())
    )


def compute(facts: Facts, period: Period, keys: RecordKeys | None = None) -> tuple[StatsCell, ...]:
    """Every non-zero cell of dataset mbe-core for `period` (see the module docstring).

    `keys` may be passed to reuse record keys across computations of the same
    period (node/stats/erasure.py); it must be made for `period` and the facts' secret.
    """
    keys = keys or RecordKeys(facts.secret, period.id)
    return to_cells(count_cells(measure_items(facts, period), keys))


def cell_rows(cells: Iterable[StatsCell]) -> list[dict[str, object]]:
    """Cells as JSON objects for the preview (counts only: cell keys stay with the hub's
    perturbation and mean nothing to a person)."""
    return [{"measure": c.measure, "dims": dict(c.dims), "count": c.count} for c in cells]
