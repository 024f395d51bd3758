"""The measures of unmet need (dataset version 3): declines by target and by reason,
answers and unanswered referrals by wait band, from hand-made facts, from the store
and through a submission; and the largest report they allow still fits."""

from __future__ import annotations

import itertools

import pytest

from hub.stats.aggregate import margin_problems
from node.domain.referral_states import OUT
from node.stats.compute import compute, wait_band
from node.stats.facts import CaseFact, ContactFact, Facts, ReferralFact, load_facts
from node.stats.periods import parse_period
from node.stats.service import SUBMITTED_NOW
from protocol import codes
from protocol.cellkeys import KEY_SPACE, RecordKeys
from protocol.encoding import pack
from protocol.envelope import MAX_PLAINTEXT
from protocol.payloads import MAX_CELLS, StatsCell, StatsReport
from tests.node.conftest import CASE, Office, consent_for, deliver, make_office
from tests.node_stats.conftest import FakeHub, make_service, set_today

NEW_MEASURES = tuple(codes.MEASURES_SINCE)
Table = dict[str, dict[str, int]]

_CASE = CaseFact(
    "case-1", "2026-09-01", None, "short_counselling", None, 1990, "female", "SY",
    "toleration", "2025-01", 0, ("housing",), None,
)  # fmt: skip


def _ref(rid: str, sent: str, **kw: object) -> ReferralFact:
    fields: dict[str, object] = {"target": "jobcenter", "accepted": None, "sent_in_error": False}
    fields.update(kw)
    return ReferralFact(rid, "case-1", sent=sent, **fields)  # type: ignore[arg-type]


def _facts(*refs: ReferralFact) -> Facts:
    return Facts({"case-1": _CASE}, (), refs, secret=bytes(range(32)))


def _table(cells: tuple[StatsCell, ...]) -> Table:
    """measure -> {"dim=value;dim=value": count}, "" for the total."""
    out: Table = {}
    for c in cells:
        key = ";".join(f"{d}={v}" for d, v in sorted(c.dims.items()))
        out.setdefault(c.measure, {})[key] = c.count
    return out


def _of(facts: Facts, period: str) -> Table:
    return _table(compute(facts, parse_period(period)))


def _by(table: Table, measure: str, dim: str) -> dict[str, int]:
    """The cells of `measure` by `dim` alone, as {code: count}."""
    return {
        k.split("=", 1)[1]: n
        for k, n in table.get(measure, {}).items()
        if k.startswith(f"{dim}=") and ";" not in k
    }


def test_a_decline_counts_by_target_and_by_reason_in_the_period_it_arrived() -> None:
    """A decline arriving in November with reason not_responsible counts in both measures."""
    facts = _facts(
        _ref("r1", "2026-10-28", target="psychosocial", declined="2026-11-03",
             decline_reason="not_responsible"),
        _ref("r2", "2026-11-10", target="psychosocial", declined="2026-12-01",
             decline_reason="no_capacity"),
        _ref("r3", "2026-11-10", target="jobcenter", declined="2026-11-11",
             decline_reason="reason-from-a-newer-node"),
    )  # fmt: skip
    nov = _of(facts, "2026-11")
    assert _by(nov, "referrals_declined", "target") == {"psychosocial": 1, "jobcenter": 1}
    assert nov["referrals_declined"]["gender=female;target=psychosocial"] == 1
    # An unknown reason counts as `other`, so the reasons add up to the declines.
    assert _by(nov, "referrals_declined_reason", "decline_reason") == {
        "not_responsible": 1,
        "other": 1,
    }
    assert nov["referrals_declined_reason"]["decline_reason=not_responsible;gender=female"] == 1
    assert nov["referrals_declined"][""] == nov["referrals_declined_reason"][""] == 2
    assert _by(_of(facts, "2026-12"), "referrals_declined_reason", "decline_reason") == {
        "no_capacity": 1
    }
    assert "referrals_declined" not in _of(facts, "2026-10")


def test_declines_by_reason_carry_the_keys_of_the_same_declines_by_target() -> None:
    """Cells without the reason hold the same records as referrals_declined's: same count
    and key, so the hub publishes one number for them, not two noisy views."""
    facts = _facts(
        *(
            _ref(f"r{i}", "2026-11-02", target=t, declined="2026-11-05", decline_reason=r)
            for i, (t, r) in enumerate([("mbe", "no_capacity"), ("jmd", "other")] * 2)
        )
    )
    cells = {c.ident(): c for c in compute(facts, parse_period("2026-11"))}
    by_target = {d: c for (m, d), c in cells.items() if m == "referrals_declined"}
    by_reason = {d: c for (m, d), c in cells.items() if m == "referrals_declined_reason"}
    shared = by_target.keys() & by_reason.keys()
    assert {(), (("gender", "female"),)} <= shared
    assert shared == {d for d in by_reason if all(k != "decline_reason" for k, _ in d)}
    assert all((by_target[d].count, by_target[d].cell_key) == (
        by_reason[d].count, by_reason[d].cell_key) for d in shared)  # fmt: skip
    keys = RecordKeys(facts.secret, "2026-11")
    reason = by_reason[(("decline_reason", "no_capacity"),)]
    name = "referrals_declined_reason:decline_reason=no_capacity"
    assert reason.cell_key == sum(keys.key(name, r) for r in ("r0", "r2")) % KEY_SPACE


@pytest.mark.parametrize(
    ("sent", "answer", "band"),
    [
        ("2026-11-10", "2026-11-10", "same_day"),
        ("2026-11-10", "2026-11-11", "1_3_days"),
        ("2026-11-10", "2026-11-13", "1_3_days"),
        ("2026-11-10", "2026-11-14", "4_7_days"),
        ("2026-11-10", "2026-11-17", "4_7_days"),
        ("2026-11-10", "2026-11-18", "8_14_days"),
        ("2026-11-10", "2026-11-24", "8_14_days"),
        ("2026-11-10", "2026-11-25", "over_14_days"),
        ("2026-12-31", "2027-01-01", "1_3_days"),  # calendar days, across a year
        ("2026-11-10", "2026-11-09", "same_day"),  # a clock set back waits no time
    ],
)
def test_wait_band_boundaries(sent: str, answer: str, band: str) -> None:
    """Whole calendar days from sending to answer: 0, 1-3, 4-7, 8-14, 15 and more."""
    assert wait_band(sent, answer) == band


def test_answers_count_by_wait_band_in_the_period_they_arrived() -> None:
    """Acceptances and declines both count as answers, banded by their own wait."""
    facts = _facts(
        _ref("acc", "2026-10-29", accepted="2026-11-01"),  # 3 days
        _ref("dec", "2026-10-20", declined="2026-11-04", decline_reason="no_capacity"),  # 15
        _ref("fast", "2026-11-30", accepted="2026-11-30"),
        _ref("late", "2026-11-30", accepted="2026-12-08"),  # 8 days, in December
    )
    nov = _of(facts, "2026-11")
    assert _by(nov, "referrals_answered", "wait_band") == {
        "1_3_days": 1,
        "over_14_days": 1,
        "same_day": 1,
    }
    assert (
        nov["referrals_answered"][""]
        == nov["referrals_accepted"][""] + nov["referrals_declined"][""]
    )
    assert _by(_of(facts, "2026-12"), "referrals_answered", "wait_band") == {"8_14_days": 1}
    assert "referrals_answered" not in _of(facts, "2026-10")


def test_a_referral_withdrawn_as_sent_in_error_counts_in_no_new_measure() -> None:
    """Sent in error: neither its decline, its answer nor its waiting is counted."""
    facts = _facts(
        _ref("d", "2026-11-02", declined="2026-11-03", decline_reason="no_capacity",
             sent_in_error=True, stopped="2026-11-04"),
        _ref("w", "2026-11-20", sent_in_error=True, stopped="2026-12-02"),
    )  # fmt: skip
    nov = _of(facts, "2026-11")
    assert not set(NEW_MEASURES) & set(nov)
    assert "referrals_sent" not in nov


def test_unanswered_referrals_are_those_waiting_at_the_end_of_the_last_day() -> None:
    """Waiting on 30 November: sent by then, not answered, expired or withdrawn by then."""
    facts = _facts(
        _ref("on-end", "2026-11-30"),  # same day
        _ref("three", "2026-11-27"),  # 3 days
        _ref("old", "2026-10-01"),  # 60 days
        _ref("answered-on-end", "2026-11-20", accepted="2026-11-30"),
        _ref("answered-after", "2026-11-20", declined="2026-12-01", decline_reason="other"),
        _ref("expired-on-end", "2026-11-02", stopped="2026-11-30"),
        _ref("withdrawn-after", "2026-11-16", stopped="2026-12-02"),  # 14 days
        _ref("sent-after", "2026-12-01"),
    )
    nov = _of(facts, "2026-11")
    assert _by(nov, "referrals_unanswered", "wait_band") == {
        "same_day": 1,
        "1_3_days": 1,
        "over_14_days": 1,
        "8_14_days": 2,  # answered-after (10 days), withdrawn-after (14 days)
    }
    assert nov["referrals_unanswered"]["gender=female;wait_band=same_day"] == 1
    # October ends with old (30 days) waiting; Q4 ends on 31 December.
    assert _by(_of(facts, "2026-10"), "referrals_unanswered", "wait_band") == {"over_14_days": 1}
    q4 = _by(_of(facts, "2026-Q4"), "referrals_unanswered", "wait_band")
    assert q4 == {"over_14_days": 4}  # old, on-end, three, sent-after (30 days)


def test_new_measures_are_crossed_one_dimension_at_a_time_and_never_by_nationality() -> None:
    """Their cells: breakdown and at most one crossing, never nationality; margins add up."""
    facts = _facts(
        _ref("a", "2026-11-02", declined="2026-11-05", decline_reason="no_capacity"),
        _ref("b", "2026-11-03", accepted="2026-11-04"),
        _ref("c", "2026-11-20"),
    )
    cells = compute(facts, parse_period("2026-11"))
    new = [c for c in cells if c.measure in NEW_MEASURES]
    assert {c.measure for c in new} == set(NEW_MEASURES)
    for c in new:
        crossing = [d for d in c.dims if d in codes.CROSS_DIMENSIONS]
        assert len(crossing) <= 1, c
        assert "nationality" not in crossing, c
    sent = [c for c in cells if c.measure == "referrals_sent"]
    assert any(len(c.dims) == 2 and "target" not in c.dims for c in sent)  # pairs stay
    report = StatsReport("2026-11", 1, 0, cells)
    assert margin_problems(report) == ()
    assert StatsReport.from_map(report.to_map()) == report


class _WidestKeys(RecordKeys):
    """Every record key 2**32 - 1: each cell key then packs in its widest form."""

    def key(self, cell: str, record: str) -> int:
        return KEY_SPACE - 1


def _largest_facts() -> Facts:
    """Facts that fill every cell the dataset allows: every pair of the case dimensions
    (all topics on every case), every breakdown value with every value of every crossing
    dimension, every breakdown value with each of the 249 nationality codes (the measures
    of unmet need are crossed by neither pairs nor nationality, so their referrals are
    only needed in the second part)."""
    end = "2026-12-31"
    topics = tuple(sorted(codes.TOPIC))
    bands = [(0, "2026-12-31"), (2, "2026-12-29"), (5, "2026-12-26")]
    bands += [(10, "2026-12-21"), (20, "2026-12-11")]
    targets, reasons = sorted(codes.REFERRAL_TARGET), sorted(codes.DECLINE_REASON)
    closures, channels = sorted(codes.CLOSURE), sorted(codes.CONTACT_CHANNEL)
    cases: dict[str, CaseFact] = {}
    contacts: list[ContactFact] = []
    referrals: list[ReferralFact] = []

    def add(
        cid: str, person: tuple[str, str, int | None, str | None, str], k: int, *, all_: bool
    ) -> None:
        """One case with the k-th value of every breakdown (cycled by each list's length);
        `all_`: with a decline and a waiting referral besides the accepted one."""
        gender, residence, birth, entry, nationality = person
        cases[cid] = CaseFact(
            cid, "2026-01-01", "2026-06-01", "case_management", closures[k % len(closures)],
            birth, gender, nationality, residence, entry, 1,
            topics if nationality == "DE" else (), "2026-01-02",
        )  # fmt: skip
        contacts.append(ContactFact(f"{cid}-k", cid, "2026-03-01", channels[k % len(channels)]))
        waited, sent = bands[k % len(bands)]
        target = targets[k % len(targets)]
        referrals.append(ReferralFact(f"{cid}-a", cid, target, sent, end, False))
        if not all_:
            return
        early = f"2026-11-{30 - waited:02d}" if waited < 30 else "2026-11-01"
        referrals.append(
            ReferralFact(f"{cid}-d", cid, target, early, None, False, declined="2026-11-30",
                         decline_reason=reasons[k % len(reasons)])
        )  # fmt: skip
        referrals.append(ReferralFact(f"{cid}-u", cid, target, sent, None, False))

    people = itertools.product(
        sorted(codes.GENDER), sorted(codes.RESIDENCE), [1960, 1980, 1995, 2005, None],
        ["2010-01", "2025-06", "2026-10", None],
    )  # fmt: skip
    for i, (g, r, b, e) in enumerate(people):  # every pair of case dimensions
        add(f"p{i}", (g, r, b, e, "DE"), 0, all_=False)
    for i, k in itertools.product(range(9), range(9)):  # each breakdown with each value
        g, r = sorted(codes.GENDER)[i % 4], sorted(codes.RESIDENCE)[i]
        b, e = [1960, 1980, 1995, 2005, None][i % 5], ["2010-01", "2025-06", "2026-10", None][i % 4]
        add(f"b{i}-{k}", (g, r, b, e, "DE"), k, all_=True)
    nationalities = [f"{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(249)]
    for j, k in itertools.product(range(249), range(9)):  # each breakdown by nationality
        add(f"n{j}-{k}", ("female", "other", 1980, "2020-01", nationalities[j]), k, all_=False)
    return Facts(cases, tuple(contacts), tuple(referrals), secret=bytes(32))


def _largest_count() -> int:
    """The cells the code lists allow: per measure the total, the breakdown, each crossing
    dimension alone and with the breakdown, and (if crossed by two) the pairs without
    nationality."""
    sizes = {
        d: len(v) if isinstance(v, frozenset) else 249 for d, v in codes.CROSS_DIMENSIONS.items()
    }
    total = 0
    for measure, breakdown in codes.MEASURES.items():
        b = len(breakdown[1]) if breakdown else 0
        dims, max_cross = codes.crossing(measure)
        single = sum(sizes[d] for d in dims)
        pairs = sum(
            sizes[x] * sizes[y]
            for x, y in itertools.combinations(sorted(dims - {"nationality"}), 2)
        )
        total += 1 + b + single * (1 + b) + (pairs if max_cross >= 2 else 0)
    return total


def test_the_largest_report_the_code_lists_allow_fits_one_sealed_message() -> None:
    """Every cell of every measure, widest keys: 14,984 cells, within MAX_CELLS and the cap."""
    period = parse_period("2026")
    cells = compute(_largest_facts(), period, _WidestKeys(bytes(32), period.id))
    assert len(cells) == _largest_count() == 14_984
    size = len(pack(StatsReport("2026", 1_000_000, 2**53, cells).to_map()))
    assert len(cells) <= MAX_CELLS
    # Counts here are small; real ones of up to 65,535 add 2 bytes per cell.
    assert size + 2 * len(cells) < MAX_PLAINTEXT - 4096


# --- through the store and a submission ----------------------------------------------

FIELDS = ["given_name", "family_name", "birth_year", "topics"]


def _refer(office: Office, case_id: str, target: str) -> str:
    ref = office.store.referrals.create(
        {"case_id": case_id, "recipient": "awo-fue", "target_type": target, "fields": FIELDS}
    )
    return ref.referral_id


async def test_a_real_decline_and_a_waiting_referral_reach_the_hub_in_a_version_3_report(
    office: Office, hub: FakeHub
) -> None:
    """Sent, declined by the other office, delivered back: the report counts it by target,
    reason and wait; the one never answered waits; the one sent in error counts nowhere."""
    other = make_office("awo-fue")
    try:
        set_today(office, "2026-10-02")
        set_today(other, "2026-10-02")
        case_id = office.store.cases.create(dict(CASE))
        office.store.consents.record(case_id, consent_for("awo-fue", FIELDS))
        declined = _refer(office, case_id, "mbe")
        deliver(office, other)
        other.store.referrals.decline(declined, "no_capacity", None)
        set_today(office, "2026-10-06")  # the answer arrives four days after sending
        deliver(other, office)
        assert office.store.referrals.get(OUT, declined).state == "declined"
        set_today(office, "2026-10-20")
        _refer(office, case_id, "jmd")  # never answered: 11 days on 31 October
        mistake = _refer(office, case_id, "other")
        office.store.referrals.withdraw(mistake, "sent_in_error")
        set_today(office, "2027-01-20")

        facts = load_facts(office.store.ctx)
        (fact,) = [r for r in facts.referrals if r.referral_id == declined]
        assert (fact.declined, fact.decline_reason, fact.answered) == (
            "2026-10-06", "no_capacity", "2026-10-06")  # fmt: skip
        assert [r.stopped for r in facts.referrals if r.referral_id == mistake] == ["2026-10-20"]

        outcome = await make_service(office, hub).submit("2026-10")
        assert outcome.state == SUBMITTED_NOW
        (report,) = hub.received
    finally:
        other.store.close()
    assert report.version == codes.DATASET_VERSION == 3
    t = _table(report.cells)
    assert _by(t, "referrals_declined", "target") == {"mbe": 1}
    assert _by(t, "referrals_declined_reason", "decline_reason") == {"no_capacity": 1}
    assert _by(t, "referrals_answered", "wait_band") == {"4_7_days": 1}
    assert _by(t, "referrals_unanswered", "wait_band") == {"8_14_days": 1}
    assert t["referrals_declined_reason"]["decline_reason=no_capacity;residence=residence_permit"]
    assert _by(t, "referrals_sent", "target") == {"mbe": 1, "jmd": 1}
    assert margin_problems(report) == ()


def test_an_expired_referral_stops_waiting_on_the_day_it_expired(office: Office) -> None:
    """The store's expiry is read as the end of waiting: waiting before, not after."""
    set_today(office, "2026-09-25")
    case_id = office.store.cases.create(dict(CASE))
    office.store.consents.record(case_id, consent_for("awo-fue", FIELDS))
    rid = _refer(office, case_id, "mbe")
    set_today(office, "2026-10-10")
    assert office.store.lifecycle.expire_unanswered(OUT, rid)
    set_today(office, "2027-01-20")
    facts = load_facts(office.store.ctx)
    assert [(r.sent, r.stopped, r.answered) for r in facts.referrals] == [
        ("2026-09-25", "2026-10-10", None)
    ]
    assert _by(_of(facts, "2026-09"), "referrals_unanswered", "wait_band") == {"4_7_days": 1}
    assert "referrals_unanswered" not in _of(facts, "2026-10")
