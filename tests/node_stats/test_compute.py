"""Dataset mbe-core from a known case store: every number, margins, topic, periods."""

from __future__ import annotations

import datetime as dt
import itertools

from hub.stats.aggregate import margin_problems
from node.stats.compute import age_band, compute, length_of_stay
from node.stats.facts import CaseFact, ContactFact, Facts, ReferralFact, load_facts
from node.stats.periods import parse_period
from protocol import codes
from protocol.cellkeys import KEY_SPACE, RecordKeys
from protocol.encoding import pack
from protocol.envelope import MAX_PLAINTEXT
from protocol.payloads import MAX_CELLS, StatsCell, StatsReport
from tests.node.conftest import Office
from tests.node_stats.conftest import Known, add_case

Cells = dict[str, dict[str, int]]


def _table(cells: tuple[StatsCell, ...]) -> Cells:
    """measure -> {"dim=value;dim=value": count}, "" for the total."""
    out: Cells = {}
    for c in cells:
        key = ";".join(f"{d}={v}" for d, v in sorted(c.dims.items()))
        out.setdefault(c.measure, {})[key] = c.count
    return out


def _of(office: Office, period: str) -> Cells:
    return _table(compute(load_facts(office.store.ctx), parse_period(period)))


def _pairs(features: list[str]) -> dict[str, int]:
    """Helper for readable expectations: each written pair counted once."""
    return {f: 1 for f in features}


ACTIVE_Q4 = {
    "": 4,
    "gender=female": 2,
    "gender=male": 1,
    "gender=diverse": 1,
    "residence=residence_permit": 1,
    "residence=toleration": 1,
    "residence=unknown": 1,
    "residence=settlement_permit": 1,
    "nationality=SY": 1,
    "nationality=UA": 1,
    "nationality=XX": 1,
    "nationality=TR": 1,
    "age_band=27_39": 1,
    "age_band=under_27": 1,
    "age_band=60_plus": 2,
    "length_of_stay=over_3y": 1,
    "length_of_stay=under_1y": 2,
    "length_of_stay=1_to_3y": 1,
    # Topic is not additive: 3 + 1 + 1 = 5 cases by topic out of 4 (C has none).
    "topic=housing": 3,
    "topic=language_course": 1,
    "topic=health": 1,
    "gender=female;residence=residence_permit": 1,
    "gender=female;residence=unknown": 1,
    "gender=male;residence=toleration": 1,
    "gender=diverse;residence=settlement_permit": 1,
    "age_band=27_39;gender=female": 1,
    "age_band=under_27;gender=male": 1,
    "age_band=60_plus;gender=diverse": 1,
    "age_band=60_plus;gender=female": 1,
    "gender=female;length_of_stay=over_3y": 1,
    "gender=male;length_of_stay=under_1y": 1,
    "gender=diverse;length_of_stay=1_to_3y": 1,
    "gender=female;length_of_stay=under_1y": 1,
    "gender=female;topic=housing": 1,
    "gender=female;topic=language_course": 1,
    "gender=male;topic=housing": 1,
    "gender=diverse;topic=health": 1,
    "gender=diverse;topic=housing": 1,
    "age_band=27_39;residence=residence_permit": 1,
    "age_band=under_27;residence=toleration": 1,
    "age_band=60_plus;residence=settlement_permit": 1,
    "age_band=60_plus;residence=unknown": 1,
    "length_of_stay=over_3y;residence=residence_permit": 1,
    "length_of_stay=under_1y;residence=toleration": 1,
    "length_of_stay=1_to_3y;residence=settlement_permit": 1,
    "length_of_stay=under_1y;residence=unknown": 1,
    "residence=residence_permit;topic=housing": 1,
    "residence=residence_permit;topic=language_course": 1,
    "residence=toleration;topic=housing": 1,
    "residence=settlement_permit;topic=health": 1,
    "residence=settlement_permit;topic=housing": 1,
    "age_band=27_39;length_of_stay=over_3y": 1,
    "age_band=under_27;length_of_stay=under_1y": 1,
    "age_band=60_plus;length_of_stay=1_to_3y": 1,
    "age_band=60_plus;length_of_stay=under_1y": 1,
    "age_band=27_39;topic=housing": 1,
    "age_band=27_39;topic=language_course": 1,
    "age_band=under_27;topic=housing": 1,
    "age_band=60_plus;topic=health": 1,
    "age_band=60_plus;topic=housing": 1,
    "length_of_stay=over_3y;topic=housing": 1,
    "length_of_stay=over_3y;topic=language_course": 1,
    "length_of_stay=under_1y;topic=housing": 1,
    "length_of_stay=1_to_3y;topic=health": 1,
    "length_of_stay=1_to_3y;topic=housing": 1,
}

# A (goals_achieved) and E (moved): each alone in every cell but the total and housing.
_A = [
    "gender=female",
    "residence=residence_permit",
    "nationality=SY",
    "age_band=27_39",
    "length_of_stay=over_3y",
    "topic=housing",
    "topic=language_course",
]
_E = [
    "gender=diverse",
    "residence=settlement_permit",
    "nationality=TR",
    "age_band=60_plus",
    "length_of_stay=1_to_3y",
    "topic=health",
    "topic=housing",
]


def _closed_expected() -> dict[str, int]:
    out: dict[str, int] = {"": 2, "closure=goals_achieved": 1, "closure=moved": 1}
    for reason, feats in (("goals_achieved", _A), ("moved", _E)):
        for f in feats:
            out[f] = out.get(f, 0) + 1
            out[";".join(sorted([f"closure={reason}", f]))] = 1
        for a, b in itertools.combinations(feats, 2):
            if a.split("=")[0] == b.split("=")[0] or "nationality" in a + b:
                continue
            out[";".join(sorted([a, b]))] = 1
    return out


def test_cases_active_every_cell(known: Known) -> None:
    """cases_active in Q4: all 65 cells, with margins, pairs and overlapping topics."""
    assert len(ACTIVE_Q4) == 65
    assert _of(known.office, "2026-Q4")["cases_active"] == ACTIVE_Q4


def test_cases_closed_every_cell_with_breakdown(known: Known) -> None:
    """cases_closed: total, by closure reason, crossings, reason x crossing, 58 cells."""
    closed = _of(known.office, "2026-Q4")["cases_closed"]
    expected = _closed_expected()
    assert expected["topic=housing"] == 2  # written out: both closed cases have housing
    assert len(expected) == 58
    assert closed == expected


def test_totals_and_breakdowns_of_every_measure(known: Known) -> None:
    """Totals and breakdowns of every measure match the hand count of the fixture."""
    t = _of(known.office, "2026-Q4")
    assert {m: t[m][""] for m in t} == {
        "cases_new": 3,  # A, C, E
        "cases_active": 4,  # A, B (opened in September), C, E; D closed in August
        "cases_closed": 2,
        "case_management_with_agreement": 1,  # A; C has none, E's is dated 2027
        "contacts": 4,  # B's September contact is outside
        "family_members": 3,  # A 2 + C 1
        "referrals_sent": 2,  # the one sent in error is not counted
        "referrals_accepted": 2,  # including the September referral accepted in October
        "referrals_answered": 2,  # the two acceptances; nothing was declined
        "referrals_unanswered": 1,  # debt counselling, sent 5 November, waiting on 31 December
    }
    assert {
        k: v for k, v in t["contacts"].items() if k.startswith("channel=") and ";" not in k
    } == {
        "channel=in_person": 2,
        "channel=phone": 1,
        "channel=video": 1,
    }
    sent = {
        k: v for k, v in t["referrals_sent"].items() if k.startswith("target=") and ";" not in k
    }
    assert sent == {"target=jobcenter": 1, "target=debt_counselling": 1}
    acc = {k: v for k, v in t["referrals_accepted"].items() if k.startswith("target=")}
    assert acc["target=jobcenter"] == 2
    assert t["referrals_accepted"]["gender=female;target=jobcenter"] == 2


def test_crossings_of_contacts_and_weighted_family_members(known: Known) -> None:
    """Contacts cross by their case's gender and channel; family members are summed, by topic."""
    t = _of(known.office, "2026-Q4")
    contacts = t["contacts"]
    assert contacts["gender=female"] == 3
    assert contacts["gender=male"] == 1
    assert contacts["channel=in_person;gender=female"] == 1
    assert contacts["channel=in_person;gender=male"] == 1
    assert contacts["channel=phone;gender=female"] == 1
    assert contacts["channel=video;gender=female"] == 1
    assert contacts["gender=female;topic=housing"] == 2  # A's two contacts
    family = t["family_members"]
    assert family["topic=housing"] == 2
    assert family["topic=language_course"] == 2
    assert family["gender=female"] == 3
    assert "topic=health" not in family  # absent means zero: E has no family members


def test_quarter_and_year_are_distinct_counts_not_sums(known: Known) -> None:
    """A case active in October and November counts once in Q4 and once in 2026."""
    o = known.office
    months = [_of(o, f"2026-{m}")["cases_active"][""] for m in ("10", "11", "12")]
    assert months == [2, 3, 3]  # Oct: A, B; Nov: A, B, C; Dec: B, C, E
    assert _of(o, "2026-Q4")["cases_active"][""] == 4
    assert _of(o, "2026")["cases_active"][""] == 5
    assert _of(o, "2026-Q3")["cases_active"][""] == 2  # B, D
    # Flows (new cases) do add up over the months of the quarter.
    assert [_of(o, f"2026-{m}")["cases_new"][""] for m in ("10", "11", "12")] == [1, 1, 1]


def test_only_non_zero_cells_and_every_margin_present(known: Known) -> None:
    """No cell is zero, and every lower-order combination of a sent cell is sent too."""
    cells = compute(load_facts(known.office.store.ctx), parse_period("2026"))
    keys = {c.ident() for c in cells}
    assert all(c.count > 0 for c in cells)
    for measure, dims in keys:
        for drop in range(len(dims)):
            assert (measure, dims[:drop] + dims[drop + 1 :]) in keys
    assert all(len(c.dims) <= 2 for c in cells)
    # Nationality is crossed with the measure's breakdown only (compute.SOLO_DIMENSIONS).
    paired = [c for c in cells if "nationality" in c.dims and len(c.dims) == 2]
    assert paired
    assert all(set(c.dims) & {"closure", "channel", "target"} for c in paired)


def test_hub_margin_check_passes_when_every_case_has_birth_year_and_entry(
    office: Office,
) -> None:
    """The hub's own margin check finds nothing for cases with complete attributes."""
    for i, (g, n) in enumerate([("female", "SY"), ("male", "AF"), ("female", "AF")]):
        add_case(
            office,
            opened=f"2026-10-0{i + 1}",
            closed="2026-11-15" if i else None,
            reason="referred",
            contacts=(("2026-10-20", "phone"),),
            gender=g,
            nationality=n,
            birth_year=1970 + 10 * i,
            entry_month="2019-01",
            residence_status="asylum_pending",
            topics=["health", "debt"][: i + 1],
        )
    cells = compute(load_facts(office.store.ctx), parse_period("2026-Q4"))
    assert margin_problems(StatsReport("2026-Q4", 1, 0, cells)) == ()


def test_hub_margin_check_passes_for_the_known_fixture(known: Known) -> None:
    """The Q4 and year reports of the fixture pass the hub's margin check."""
    for period in ("2026-Q4", "2026", "2026-11"):
        cells = compute(load_facts(known.office.store.ctx), parse_period(period))
        assert margin_problems(StatsReport(period, 1, 0, cells)) == ()


def test_a_case_without_birth_year_counts_in_the_unknown_age_band(known: Known) -> None:
    """A case lacking a birth year is counted in age band `unknown`, so the bands add up."""
    add_case(known.office, opened="2026-10-01", gender="male", entry_month="2020-01")
    cells = compute(load_facts(known.office.store.ctx), parse_period("2026-Q4"))
    t = _table(cells)
    assert t["cases_active"]["age_band=unknown"] == 1
    assert t["cases_new"]["age_band=unknown"] == 1
    active_bands = sum(
        n for k, n in t["cases_active"].items() if k.startswith("age_band=") and ";" not in k
    )
    assert active_bands == t["cases_active"][""]
    assert t["cases_active"]["length_of_stay=over_3y"] == 2  # the new case has an entry month
    assert t["cases_closed"]["age_band=27_39"] == 1  # the closed cases all have a birth year
    assert margin_problems(StatsReport("2026-Q4", 1, 0, cells)) == ()


def test_age_band_and_length_of_stay_boundaries() -> None:
    """Age from the birth year at the period end; stay in whole months up to the end month."""
    end = dt.date(2026, 12, 31)
    assert [age_band(y, end) for y in (2000, 1999, 1987, 1986, 1967, 1966)] == [
        "under_27",
        "27_39",
        "27_39",
        "40_59",
        "40_59",
        "60_plus",
    ]
    assert age_band(None, end) == "unknown"
    assert [
        length_of_stay(m, end) for m in ("2026-12", "2026-01", "2025-12", "2024-01", "2023-12")
    ] == [
        "under_1y",
        "under_1y",
        "1_to_3y",
        "1_to_3y",
        "over_3y",
    ]
    assert length_of_stay(None, end) == "unknown"


def _worst_case_facts(nationalities: int) -> Facts:
    """Every combination of every code: the largest report the code lists allow."""
    nats = [f"{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(nationalities)]
    cases: dict[str, CaseFact] = {}
    contacts, referrals = [], []
    combos = itertools.product(
        sorted(codes.GENDER),
        sorted(codes.RESIDENCE),
        [1960, 1980, 1995, 2005],
        ["2010-01", "2025-06", "2026-10"],
    )
    topics = sorted(codes.TOPIC)
    for i, (g, r, by, em) in enumerate(combos):
        cid = f"{i:032x}"
        cases[cid] = CaseFact(
            cid,
            "2026-01-01",
            "2026-06-01",
            "case_management",
            sorted(codes.CLOSURE)[i % 6],
            by,
            g,
            nats[i % nationalities],
            r,
            em,
            1,
            tuple(topics),
            "2026-01-02",
        )
    for j, n in enumerate(nats):
        cases[f"n{j}"] = CaseFact(
            f"n{j}",
            "2026-01-01",
            "2026-06-01",
            "case_management",
            sorted(codes.CLOSURE)[j % 6],
            1980,
            "female",
            n,
            "other",
            "2020-01",
            1,
            tuple(topics),
            "2026-01-02",
        )
        for ch in sorted(codes.CONTACT_CHANNEL):
            contacts.append(ContactFact(f"c{j}-{ch}", f"n{j}", "2026-03-01", ch))
        for t in sorted(codes.REFERRAL_TARGET):
            referrals.append(
                ReferralFact(f"r{j}-{t}", f"n{j}", t, "2026-03-01", "2026-03-02", False)
            )
    return Facts(cases, tuple(contacts), tuple(referrals), secret=bytes(32))


def test_worst_case_report_fits_one_sealed_message() -> None:
    """With all 249 ISO nationalities and every code combination the report fits the caps."""
    cells = compute(_worst_case_facts(249), parse_period("2026"))
    size = len(pack(StatsReport("2026", 1, 2_000_000_000, cells).to_map()))
    assert len(cells) <= MAX_CELLS
    assert size < MAX_PLAINTEXT - 4096  # room for the signed message around the payload


def _one_case_facts(secret: bytes, *, contacts: int = 0) -> Facts:
    case = CaseFact(
        "case-1", "2026-11-02", None, "short_counselling", None, 1990, "female", "SY",
        "toleration", "2025-01", 0, ("housing",), None,
    )  # fmt: skip
    return Facts(
        {"case-1": case},
        tuple(ContactFact(f"k{i}", "case-1", "2026-11-03", "phone") for i in range(contacts)),
        (),
        secret=secret,
    )


def test_cell_key_is_the_sum_of_the_record_keys() -> None:
    """Each cell's key is the sum mod 2**32 of its records' keys for that cell and period."""
    secret = bytes(range(32))
    cells = {
        c.ident(): c for c in compute(_one_case_facts(secret, contacts=3), parse_period("2026-11"))
    }
    keys = RecordKeys(secret, "2026-11")
    phone = cells[("contacts", (("channel", "phone"),))]
    assert phone.count == 3
    name = "contacts:channel=phone"
    assert phone.cell_key == sum(keys.key(name, f"k{i}") for i in range(3)) % KEY_SPACE
    total = cells[("cases_new", ())]
    assert total.cell_key == keys.key("cases_new:", "case-1")


def test_one_clients_cells_carry_unlinkable_keys() -> None:
    """The count-1 cells of a single client all carry different keys (no pseudonym)."""
    cells = compute(_one_case_facts(bytes(range(32))), parse_period("2026-11"))
    ones = [c for c in cells if c.count == 1]
    assert len(ones) > 30
    assert len({c.cell_key for c in ones}) == len(ones)
    # Another period, other keys for the same cells of the same case.
    quarter = {
        c.ident(): c.cell_key
        for c in compute(_one_case_facts(bytes(range(32))), parse_period("2026-Q4"))
    }
    assert all(quarter[c.ident()] != c.cell_key for c in ones if c.ident() in quarter)


def test_keys_are_deterministic_under_one_secret_and_differ_under_another() -> None:
    """Same cases and secret: same report (so no needless revision); another secret: other keys."""
    period = parse_period("2026-11")
    a = compute(_one_case_facts(bytes(32), contacts=2), period)
    assert compute(_one_case_facts(bytes(32), contacts=2), period) == a
    b = compute(_one_case_facts(bytes([7]) * 32, contacts=2), period)
    assert [(c.ident(), c.count) for c in a] == [(c.ident(), c.count) for c in b]
    assert all(x.cell_key != y.cell_key for x, y in zip(a, b, strict=True))


def test_the_statistics_secret_is_made_once_and_kept(office: Office) -> None:
    """The office's secret is created on first use, stored in node.db and reused."""
    ctx = office.store.ctx
    assert ctx.one("SELECT secret FROM stats_secret") is None
    first = load_facts(ctx).secret
    assert len(first) == 32
    assert load_facts(ctx).secret == first
    row = ctx.one("SELECT secret FROM stats_secret")
    assert row is not None
    assert bytes(row["secret"]) == first
