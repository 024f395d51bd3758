"""`make demo`: a hub and four offices on localhost with more than a year of history.

Everything goes through the real command lines and the node API, as an
administrator and a counselling app would use them. The scenario:

* four offices in three areas of the region; Fürth has one office for as many
  clients as Nürnberg's two (the imbalance a planner should spot);
* every office's past 15 months (`--months`): clients arriving month by month
  with the seasons and each office's trend, their contacts, Förderpläne and
  closures, all dated as they happened (the API takes those dates);
* those months lived through on the demo's clock (demo/timeshift.py: every
  process runs on real time + a shared offset that the demo moves forward):
  each month's referrals, answered the same day, days or weeks later, or in
  the next month, declined with each decline reason; each month's and
  quarter's reports sent early in the next month, in time for the deadline;
* at the real time again, this month's referrals between the offices:
  accepted, declined with each of the decline reasons, some still waiting.
  Three are followed and printed step by step:

  1. Caritas Nürnberg refers a young client to the JMD at AWO Fürth: accepted;
  2. AWO Fürth refers a client to the debt counselling at Diakonie Erlangen:
     declined (no capacity);
  3. Diakonie Erlangen refers a client to the psychosocial centre at Caritas
     Nürnberg: accepted, first appointment held, completed successfully.

* the operator publishes every reported period at once.

Then the summary and where to look (APIs, dashboard, coordinator token) are
printed and the demo runs until Ctrl-C; `--once` exits after the summary (0
when every referral reached its outcome and every period was published, 1
otherwise).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from demo import sample
from demo.cluster import ApiError, Cluster, Node, Office, set_node_options
from demo.processes import ClusterError
from demo.timeshift import OFFSET_FILE, DemoClock, write_offset

T = TypeVar("T")
R = TypeVar("R")
API = "/api/v1"
# The hub's reporting time zone (hub.toml's default): a period's deadline is a day there.
HUB_ZONE = ZoneInfo("Europe/Berlin")
# Pseudonym numbers of the cases the referral plans open, apart from the history's.
PLAN_CASE_NUMBERS = 9000
PAST_CASE_NUMBERS = 7000  # and of the past months' referrals


class DemoError(Exception):
    """The scenario did not go as it should; the message says which step."""


@dataclass(frozen=True)
class DemoOffice:
    key: str
    office: Office
    locale: sample.Locale
    load: sample.Load


NUERNBERG = "Stadt Nürnberg"
FUERTH = "Fürth (Stadt und Landkreis)"
ERLANGEN = "Stadt Erlangen"

OFFICES: tuple[DemoOffice, ...] = (
    DemoOffice(
        "caritas",
        Office(
            "Caritas Nürnberg",
            "Caritas",
            ("mbe", "psychosocial", "recognition"),
            ("de", "ar", "fa", "ru", "en"),
            NUERNBERG,
        ),
        sample.Locale(
            "Nürnberg",
            ("90402", "90429", "90439", "90443", "90459", "90478"),
            ("Fürther Straße", "Gibitzenhofstraße", "Allersberger Straße", "Pillenreuther Straße"),
            ("S. Wagner", "M. Yıldız", "K. Hofmann"),
            "CAR",
            "kdg",
        ),
        sample.Load(monthly=1.0, growth=0.1),
    ),
    DemoOffice(
        "awo",
        Office(
            "AWO Fürth",
            "AWO",
            ("mbe", "jmd", "integration_course"),
            ("de", "tr", "uk", "ru", "ro", "en"),
            FUERTH,
        ),
        sample.Locale(
            "Fürth",
            ("90762", "90763", "90765", "90766", "90768"),
            ("Schwabacher Straße", "Königswarterstraße", "Flößaustraße", "Nürnberger Straße"),
            ("A. Kovalenko", "T. Becker", "D. Şahin"),
            "AWO",
            "gdpr",
        ),
        sample.Load(monthly=1.5, growth=0.35),
    ),
    DemoOffice(
        "diakonie",
        Office(
            "Diakonie Erlangen",
            "Diakonie",
            ("mbe", "debt_counselling", "recognition"),
            ("de", "en", "fr", "ar", "ti"),
            ERLANGEN,
        ),
        sample.Locale(
            "Erlangen",
            ("91052", "91054", "91056", "91058"),
            ("Nürnberger Straße", "Äußere Brucker Straße", "Hartmannstraße", "Paul-Gossen-Straße"),
            ("J. Schneider", "L. Haile", "R. Krämer"),
            "DIA",
            "dsg_ekd",
        ),
        sample.Load(monthly=0.6, growth=0.0),
    ),
    DemoOffice(
        "brk",
        Office(
            "BRK Nürnberg",
            "BRK",
            ("mbe", "jmd", "integration_course"),
            ("de", "uk", "ru", "ar", "ku"),
            NUERNBERG,
        ),
        sample.Locale(
            "Nürnberg",
            ("90408", "90419", "90441", "90469", "90471"),
            ("Sulzbacher Straße", "Äußere Bayreuther Straße", "Schweinauer Hauptstraße"),
            ("C. Weber", "O. Melnyk", "F. Al-Khatib"),
            "BRK",
            "gdpr",
        ),
        sample.Load(monthly=0.8, growth=0.05),
    ),
)


# What a receiving office does with a referral, and what the sender then sees.
EXPECT = {
    "accept": "accepted",
    "decline": "declined",
    "appointment": "first_appointment",
    "complete": "completed_successful",
    "unsuccessful": "completed_unsuccessful",
    "wait": "delivered",  # not answered yet
}


@dataclass(frozen=True)
class Plan:
    """One referral of the scenario and what the receiving office does with it."""

    sender: str
    recipient: str
    target: str
    answer: str  # a key of EXPECT
    reason: str | None = None  # of a decline
    note: str | None = None  # of a decline, or why a referral ended unsuccessfully
    purpose: str = ""  # default: PURPOSE of the target
    topics: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    young: bool = False

    @property
    def expect(self) -> str:
        return EXPECT[self.answer]


# The three referrals followed step by step: each opens its own client's case.
PLANS: tuple[Plan, ...] = (
    Plan(
        "caritas",
        "awo",
        "jmd",
        "accept",
        purpose="Weiterleitung an den Jugendmigrationsdienst",
        topics=("education_childcare", "language_course"),
        fields=("given_name", "family_name", "phone", "languages", "german_level", "topics"),
        young=True,
    ),
    Plan(
        "awo",
        "diakonie",
        "debt_counselling",
        "decline",
        reason="no_capacity",
        note="Wartezeit derzeit über drei Monate",
        purpose="Weiterleitung an die Schuldnerberatung",
        topics=("debt", "benefits_livelihood"),
        fields=("given_name", "family_name", "phone", "languages", "topics"),
    ),
    Plan(
        "diakonie",
        "caritas",
        "psychosocial",
        "complete",
        purpose="Weiterleitung an das Psychosoziale Zentrum",
        topics=("health", "family"),
        fields=("given_name", "family_name", "phone", "birth_year", "languages", "topics"),
    ),
)

# What a consent for a referral says it is for, by the referral's target.
PURPOSE = {
    "mbe": "Weiterleitung an die Migrationsberatung am Wohnort",
    "jmd": "Weiterleitung an den Jugendmigrationsdienst",
    "integration_course": "Weiterleitung zur Beratung über einen Integrationskurs",
    "debt_counselling": "Weiterleitung an die Schuldnerberatung",
    "psychosocial": "Weiterleitung an das Psychosoziale Zentrum",
    "recognition": "Weiterleitung an die Anerkennungsberatung",
}

_FULL = "Keine freien Termine in den nächsten Wochen, Warteliste geschlossen"
_AREA = "Wohnort außerhalb unseres Einzugsgebiets, bitte an die Stelle vor Ort"


def _times(n: int, plan: Plan) -> tuple[Plan, ...]:
    return (plan,) * n


# The rest of this month's referrals, for existing clients of the sending office.
# AWO Fürth, the one office of a busy area, turns many away for lack of capacity,
# and its clients sent to Nürnberg are not Nürnberg's to take.
MORE_PLANS: tuple[Plan, ...] = (
    *_times(3, Plan("caritas", "awo", "jmd", "decline", "no_capacity", _FULL)),
    *_times(2, Plan("brk", "awo", "integration_course", "decline", "no_capacity", _FULL)),
    Plan("diakonie", "awo", "mbe", "decline", "no_capacity", _FULL),
    Plan("brk", "awo", "integration_course", "accept"),
    *_times(2, Plan("caritas", "awo", "jmd", "wait")),
    *_times(2, Plan("awo", "caritas", "mbe", "decline", "not_responsible", _AREA)),
    Plan("awo", "brk", "mbe", "decline", "not_responsible", _AREA),
    Plan("awo", "brk", "jmd", "accept"),
    *_times(2, Plan("caritas", "diakonie", "debt_counselling", "accept")),
    Plan(
        "caritas",
        "diakonie",
        "debt_counselling",
        "decline",
        "client_declined",
        "Klientin hat den vereinbarten Termin abgesagt und wünscht keine Beratung mehr",
    ),
    Plan("awo", "diakonie", "debt_counselling", "appointment"),
    Plan("brk", "diakonie", "debt_counselling", "wait"),
    *_times(2, Plan("brk", "caritas", "psychosocial", "appointment")),
    Plan("brk", "caritas", "psychosocial", "decline", "no_capacity", _FULL),
    Plan(
        "awo",
        "caritas",
        "psychosocial",
        "unsuccessful",
        note="Klient ist zu zwei Terminen nicht erschienen",
    ),
    Plan(
        "diakonie",
        "caritas",
        "recognition",
        "decline",
        "service_not_offered",
        "Anerkennung von Gesundheitsberufen bieten wir nicht an",
    ),
    Plan("caritas", "brk", "integration_course", "accept"),
    Plan("caritas", "brk", "integration_course", "complete"),
    Plan("diakonie", "brk", "jmd", "decline", "other", "Bitte zuerst telefonisch abstimmen"),
    Plan("diakonie", "brk", "jmd", "accept"),
    Plan("diakonie", "awo", "mbe", "accept"),
)


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    referral_id: str
    state: str
    reason: str | None
    note: str | None  # the receiving office's note on a decline
    seconds: float
    events: tuple[str, ...]


@dataclass(frozen=True)
class Seeded:
    """What the demo put into one office: the history's cases by id."""

    key: str
    cases: dict[str, sample.Story]

    def open_cases(self) -> list[str]:
        return [cid for cid, s in self.cases.items() if s.closure is None]


def wait_for(check: Callable[[], T | None], what: str, timeout: float) -> T:
    """Poll `check` until it returns something; DemoError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def in_parallel(work: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """`work` on every item, `workers` at a time; results in the items' order.

    The offices are separate processes, so their API calls can overlap; the
    machine's cores are the limit. The first exception is raised.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(work, items))


def office(key: str) -> DemoOffice:
    return next(o for o in OFFICES if o.key == key)


def history_start(today: dt.date, months: int) -> dt.date:
    return sample.add_months(today.replace(day=1), -months)


def seed_office(
    node: Node, demo_office: DemoOffice, seed: int, scale: float, start: dt.date, today: dt.date
) -> Seeded:
    """Record the office's history: each case opened, its contacts and Förderplan, closed."""
    rng = random.Random(f"{seed}:{demo_office.key}")
    stories = sample.history(rng, demo_office.locale, demo_office.load, scale, start, today)
    cases: dict[str, sample.Story] = {}
    for told in stories:
        case_id = node.api.post(f"{API}/cases", told.case)["id"]
        for contact in told.contacts:
            node.api.post(f"{API}/cases/{case_id}/contacts", contact)
        if told.agreement is not None:
            node.api.post(f"{API}/cases/{case_id}/agreements", told.agreement)
        if told.closure is not None:
            node.api.post(f"{API}/cases/{case_id}/close", told.closure)
        cases[case_id] = told
    return Seeded(demo_office.key, cases)


# ------------------------------------------------------------------ referrals


@dataclass
class Sent:
    plan: Plan
    referral_id: str
    started: float


def _open_plan_case(
    node: Node, plan: Plan, rng: random.Random, number: int, day: dt.date | None = None
) -> tuple[str, sample.Body]:
    """A new client's case at the sender, with the plan's topics; its id and body.

    `day`: the processes' date (the demo's clock), default today."""
    today = day or dt.date.today()
    body = sample.case(rng, office(plan.sender).locale, today, number) | {
        "case_type": "case_management",
        "phone": sample.phone(rng),
    }
    if plan.topics:
        body["topics"] = list(plan.topics)
    if plan.young:
        body |= {"birth_year": today.year - 22, "german_level": "A2"}
    case_id: str = node.api.post(f"{API}/cases", body)["id"]
    for contact in sample.contacts(rng, body, today):
        node.api.post(f"{API}/cases/{case_id}/contacts", contact)
    return case_id, body


def _fields(body: sample.Body, plan: Plan) -> list[str]:
    """The fields to send: the plan's, or what the client's case holds of the usual ones."""
    if plan.fields:
        return list(plan.fields)
    usual = ("given_name", "family_name", "phone", "birth_year", "languages", "topics")
    return [f for f in usual if body.get(f) not in (None, [], "")]


def send(
    cluster: Cluster,
    plan: Plan,
    rng: random.Random,
    *,
    case_id: str,
    fields: list[str],
    day: dt.date | None = None,
) -> Sent:
    """Record the client's consent for the recipient and the fields, then refer.

    `day`: the processes' date (the demo's clock), default today."""
    sender = cluster.nodes[plan.sender]
    recipient = cluster.nodes[plan.recipient]
    purpose = plan.purpose or PURPOSE[plan.target]
    consent = sample.consent(
        rng,
        office(plan.sender).locale,
        day or dt.date.today(),
        recipient=recipient.node_id,
        recipient_name=recipient.office.name,
        fields=fields,
        purpose=purpose,
    )
    sender.api.post(f"{API}/cases/{case_id}/consents", consent)
    started = time.monotonic()
    rid = sender.api.post(
        f"{API}/referrals/outgoing",
        {
            "case_id": case_id,
            "recipient": recipient.node_id,
            "target_type": plan.target,
            "fields": fields,
        },
    )["id"]
    return Sent(plan, rid, started)


def _ids(node: Node, direction: str) -> dict[str, dict[str, Any]]:
    found = node.api.get(f"{API}/referrals/{direction}")["referrals"]
    return {r["id"]: r for r in found}


def _await_all(
    cluster: Cluster,
    sent: list[Sent],
    side: Callable[[Sent], str],
    direction: str,
    done: Callable[[Sent, dict[str, Any]], bool],
    what: str,
    timeout: float,
) -> dict[str, tuple[dict[str, Any], float]]:
    """Poll each office's list until every referral is `done`; the referral and when."""
    seen: dict[str, tuple[dict[str, Any], float]] = {}

    def check() -> bool | None:
        for key in {side(s) for s in sent}:
            listed = _ids(cluster.nodes[key], direction)
            for s in sent:
                ref = listed.get(s.referral_id)
                if side(s) == key and s.referral_id not in seen and ref and done(s, ref):
                    seen[s.referral_id] = (ref, time.monotonic())
        return True if len(seen) == len(sent) else None

    wait_for(check, f"{len(sent) - len(seen)} referral(s) {what}", timeout)
    return seen


def answer(cluster: Cluster, s: Sent, counsellor: str) -> None:
    """What the receiving office does with the referral (nothing, for `wait`)."""
    plan = s.plan
    recipient = cluster.nodes[plan.recipient]
    inc = f"{API}/referrals/incoming/{s.referral_id}"
    if plan.answer == "wait":
        return
    if plan.answer == "decline":
        body = {"reason": plan.reason} | ({"note": plan.note} if plan.note else {})
        recipient.api.post(f"{inc}/decline", body)
        return
    recipient.api.post(f"{inc}/accept", {"case_type": "case_management", "counsellor": counsellor})
    if plan.answer in ("appointment", "complete", "unsuccessful"):
        recipient.api.post(f"{inc}/status", {"outcome": "first_appointment"})
    if plan.answer == "complete":
        recipient.api.post(f"{inc}/status", {"outcome": "completed_successful"})
    if plan.answer == "unsuccessful":
        recipient.api.post(
            f"{inc}/status", {"outcome": "completed_unsuccessful", "reason": plan.note}
        )


def run_referrals(
    cluster: Cluster,
    seeded: dict[str, Seeded],
    rng: random.Random,
    timeout: float,
    taken: frozenset[str] = frozenset(),
) -> tuple[list[Outcome], list[Outcome]]:
    """Send every referral, let each recipient answer, await each outcome at the sender.

    All are in flight at once: sent, then received, then answered, then seen by
    their senders. Returns (the followed three, the others). The history's cases
    in `taken` (referred in the past months) are not referred again.
    """
    sent: list[Sent] = []
    free = {key: [c for c in s.open_cases() if c not in taken] for key, s in seeded.items()}
    for i, plan in enumerate((*PLANS, *MORE_PLANS)):
        pool = free[plan.sender] if i >= len(PLANS) else []
        if pool:  # a client of the office's history
            case_id = pool.pop(rng.randrange(len(pool)))
            body = seeded[plan.sender].cases[case_id].case
        else:  # a new client (and always for the three followed referrals)
            number = PLAN_CASE_NUMBERS + i
            case_id, body = _open_plan_case(cluster.nodes[plan.sender], plan, rng, number)
        sent.append(send(cluster, plan, rng, case_id=case_id, fields=_fields(body, plan)))
    _await_all(
        cluster,
        sent,
        lambda s: s.plan.recipient,
        "incoming",
        lambda s, ref: True,
        "to reach their recipients",
        timeout,
    )
    for s in sent:
        answer(cluster, s, office(s.plan.recipient).locale.counsellors[0])
    seen = _await_all(
        cluster,
        sent,
        lambda s: s.plan.sender,
        "outgoing",
        lambda s, ref: ref["state"] == s.plan.expect,
        "to reach their outcome at the sender",
        timeout,
    )
    outcomes = []
    for s in sent:
        ref, at = seen[s.referral_id]
        outcomes.append(
            Outcome(
                s.plan,
                s.referral_id,
                ref["state"],
                ref.get("reason"),
                ref.get("reply_note"),
                at - s.started,
                tuple(e["state"] for e in ref["history"]),
            )
        )
    return outcomes[: len(PLANS)], outcomes[len(PLANS) :]


# --------------------------------------------------------------- past months
#
# The node API dates a referral and its answer by the node's clock, as it should.
# To give the past months referrals, the demo runs every process on a shifted
# wall clock (demo/timeshift.py) and moves it through those months: each month
# the offices refer clients on the 2nd and the 20th, answer the same day, days
# later or after the month's end, and seal the month's report on the 2nd of the
# next, before its deadline.

DECLINES: tuple[tuple[str, str], ...] = (
    ("no_capacity", _FULL),
    ("not_responsible", _AREA),
    ("client_declined", "Klient möchte die Beratung nicht mehr"),
    ("service_not_offered", "Dieses Angebot haben wir nicht"),
    ("other", "Bitte zuerst telefonisch abstimmen"),
)
# Who refers to whom for what: each recipient offers the target.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("caritas", "awo", "jmd"),
    ("awo", "diakonie", "debt_counselling"),
    ("brk", "caritas", "psychosocial"),
    ("diakonie", "brk", "jmd"),
    ("awo", "caritas", "mbe"),
    ("caritas", "diakonie", "debt_counselling"),
    ("brk", "awo", "integration_course"),
    ("diakonie", "caritas", "recognition"),
    ("awo", "brk", "mbe"),
    ("caritas", "brk", "integration_course"),
    ("diakonie", "awo", "mbe"),
    ("brk", "diakonie", "debt_counselling"),
)
# The steps of a month: the day of the month on which they happen. "B" is two,
# five or ten days after "A" by turns, so the answers given then wait 1-3, 4-7
# or 8-14 days; "C" answers after more than 14 days and refers clients whose
# answers come on the next month's "A" (waiting across the month's end).
STEP_DAY = {"A": 2, "C": 20}
B_AFTER = (2, 5, 10)
STEP_HOUR = 9  # in the hub's time zone
# Longest single move of the clock: well within the demo hub's re-signing lead
# (20 days, see start) and a message's time to live (14 days).
MAX_HOP = dt.timedelta(days=5)


@dataclass(frozen=True)
class Timed:
    """A past referral: the month (index), step it is sent in and step it is answered in."""

    plan: Plan
    month: int
    sent: str
    answered: tuple[int, str]


def month_plans(i: int) -> list[Timed]:
    """Month `i`'s six referrals: two answered the same day, two at "B", one at "C",
    one sent at "C" and answered next month; the decline reasons take turns."""
    routes = [ROUTES[(6 * i + k) % len(ROUTES)] for k in range(6)]
    reasons = [DECLINES[(3 * i + k) % len(DECLINES)] for k in range(3)]

    def plan(k: int, how: str, decline: tuple[str, str] | None = None) -> Plan:
        sender, recipient, target = routes[k]
        if decline is None:
            return Plan(sender, recipient, target, how)
        return Plan(sender, recipient, target, "decline", decline[0], decline[1])

    return [
        Timed(plan(0, "accept"), i, "A", (i, "A")),
        Timed(plan(1, "decline", reasons[0]), i, "A", (i, "A")),
        Timed(plan(2, "decline", reasons[1]), i, "A", (i, "B")),
        Timed(plan(3, "appointment"), i, "A", (i, "B")),
        Timed(plan(4, "decline", reasons[2]) if i % 2 else plan(4, "accept"), i, "A", (i, "C")),
        Timed(plan(5, "accept") if i % 2 else plan(5, "decline", reasons[0]), i, "C", (i + 1, "A")),
    ]


def step_time(first: dt.date, i: int, step: str) -> dt.datetime:
    """When step `step` of month `i` (0: the month of `first`) happens, in the hub's zone."""
    month = sample.add_months(first, i)
    day = STEP_DAY["A"] + B_AFTER[i % len(B_AFTER)] if step == "B" else STEP_DAY[step]
    return dt.datetime.combine(month.replace(day=day), dt.time(STEP_HOUR), HUB_ZONE)


def settle(cluster: Cluster, timeout: float) -> None:
    """Wait until every office holds a valid directory at the processes' new time.

    After a move of the clock the hub re-signs the directory within a second (its
    maintenance interval in the demo), announces it, and the nodes fetch it.
    """

    def valid(node: Node) -> bool:
        try:
            node.api.get(f"{API}/directory")
        except ApiError as exc:
            if exc.status != 409:  # 409: expired, not fetched again yet
                raise
            return False
        return True

    wait_for(
        lambda: True if all(valid(n) for n in cluster.nodes.values()) else None,
        "the offices' directories after a move of the clock",
        timeout,
    )


def move_clock(cluster: Cluster, clock: DemoClock, when: dt.datetime, timeout: float) -> None:
    """Move every process's clock forward to `when` (at most real now) in short hops."""
    target = min(when.timestamp(), time.time())
    while clock.now() < target - 1:
        clock.move_to(min(target, clock.now() + MAX_HOP.total_seconds()))
        settle(cluster, timeout)


@dataclass(frozen=True)
class PastOutcome:
    plan: Plan
    state: str
    reason: str | None
    sent: dt.date
    answered: dt.date | None


def _open_at(seeded: Seeded, day: dt.date, used: set[str]) -> list[str]:
    """The office's history cases opened before `day` and open still, not referred yet.

    (Not those closed later: the node knows them as closed already, the whole
    history having been recorded at the start.)"""
    iso = day.isoformat()
    return [
        cid
        for cid in seeded.open_cases()
        if cid not in used and seeded.cases[cid].case["opened"] < iso
    ]


def submit_reports(cluster: Cluster, periods: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every office seals its report of each period to the hub now; their answers."""

    def submit_all(node: Node) -> list[dict[str, Any]]:
        out = []
        for period in periods:
            try:
                out.append(node.api.post(f"{API}/stats/submit", {"period": period}))
            except ApiError as exc:
                out.append({"period": period, "state": f"not submitted ({exc})"})
        return out

    nodes = list(cluster.nodes.values())
    answers = in_parallel(submit_all, nodes, workers=len(nodes))
    return dict(zip(cluster.nodes, answers, strict=True))


def run_past(
    cluster: Cluster,
    clock: DemoClock,
    seeded: dict[str, Seeded],
    rng: random.Random,
    first: dt.date,
    months: int,
    timeout: float,
) -> tuple[list[PastOutcome], dict[str, list[dict[str, Any]]], frozenset[str]]:
    """Live through the past months: referrals, answers and each month's reports.

    Returns the referrals' outcomes, each office's report submissions and the
    history's cases referred.
    """
    spans = periods_since(first, dt.date.today())
    reports: dict[str, list[dict[str, Any]]] = {key: [] for key in cluster.nodes}
    plans = [t for i in range(months) for t in month_plans(i)]
    used: set[str] = set()
    sent: dict[str, tuple[Sent, Timed, dt.date]] = {}  # by referral id
    out: list[PastOutcome] = []
    steps = [(i, step) for i in range(months) for step in ("A", "B", "C")] + [(months, "A")]
    aside = ThreadPoolExecutor(max_workers=1)
    for i, step in steps:
        move_clock(cluster, clock, step_time(first, i, step), timeout)
        day = clock.moment(HUB_ZONE).date()
        submitted = None
        if step == "A" and i > 0:
            # Last month's reports, while the referrals of the day go on.
            ended = sample.month_end(sample.add_months(first, i - 1))
            due = [p.id for p in spans if p.end == ended]
            submitted = aside.submit(submit_reports, cluster, due)
        new = []
        for t in (t for t in plans if (t.month, t.sent) == (i, step)):
            pool = _open_at(seeded[t.plan.sender], day, used)
            if pool and rng.random() < 0.5:  # a client of the office's history
                case_id = pool[rng.randrange(len(pool))]
                used.add(case_id)
                body = seeded[t.plan.sender].cases[case_id].case
            else:  # a new client, whose case the office opens that day
                number = PAST_CASE_NUMBERS + len(sent)
                node = cluster.nodes[t.plan.sender]
                case_id, body = _open_plan_case(node, t.plan, rng, number, day)
            s = send(cluster, t.plan, rng, case_id=case_id, fields=_fields(body, t.plan), day=day)
            sent[s.referral_id] = (s, t, day)
            new.append(s)
        if new:
            _await_all(
                cluster, new, lambda s: s.plan.recipient, "incoming",
                lambda s, ref: True, "to reach their recipients", timeout,
            )  # fmt: skip
        answering = [s for s, t, _ in sent.values() if t.answered == (i, step)]
        for s in answering:
            answer(cluster, s, office(s.plan.recipient).locale.counsellors[0])
        if answering:
            seen = _await_all(
                cluster, answering, lambda s: s.plan.sender, "outgoing",
                lambda s, ref: ref["state"] == s.plan.expect,
                "to reach their outcome at the sender", timeout,
            )  # fmt: skip
            for s in answering:
                ref = seen[s.referral_id][0]
                out.append(
                    PastOutcome(
                        s.plan, ref["state"], ref.get("reason"), sent[s.referral_id][2], day
                    )
                )
        if submitted is not None:  # before the clock moves on
            for key, answers in submitted.result().items():
                reports[key] += answers
    aside.shutdown()
    return out, reports, frozenset(used)


# ----------------------------------------------------------------- statistics


@dataclass(frozen=True)
class PeriodSpan:
    id: str
    start: dt.date
    end: dt.date


def periods_since(start: dt.date, today: dt.date) -> list[PeriodSpan]:
    """The months and quarters ending from `start` on that have ended by `today`, oldest
    first (the first quarter may have begun before `start`: the offices report the
    quarter they started in, as their nodes would)."""
    out = []
    month = start
    while sample.month_end(month) < today:
        end = sample.month_end(month)
        out.append(PeriodSpan(month.strftime("%Y-%m"), month, end))
        if month.month % 3 == 0:
            first = sample.add_months(month, -2)
            out.append(PeriodSpan(f"{month.year}-Q{month.month // 3}", first, end))
        month = sample.add_months(month, 1)
    return out


@dataclass(frozen=True)
class Statistics:
    published: list[str]  # periods, oldest first
    reports: dict[str, list[dict[str, Any]]]  # office key -> its submit answers
    problems: list[str]


def statistics(
    cluster: Cluster, start: dt.date, reports: dict[str, list[dict[str, Any]]]
) -> Statistics:
    """The operator publishes every period the offices reported (`mbe-hub stats publish`).

    The reports were sent on time, early in the month after each period; a
    period whose deadline has passed is published as it stood then, a later one
    early, as an operator may when every office has reported.
    """
    due = [p.id for p in periods_since(start, dt.date.today())]
    nodes = list(cluster.nodes.values())
    try:
        lines = dict(zip(due, cluster.publish_periods(due), strict=True))
    except ClusterError as exc:
        lines = dict.fromkeys(due, f"not published ({exc})")
    problems = [
        f"{cluster.nodes[key].office.name} {a['period']}: {a['state']}"
        for key, got in reports.items()
        for a in got
        if a["state"] != "submitted"
    ]
    want = f"published from {len(nodes)} office report(s)"
    problems += [f"{p}: {line}" for p, line in lines.items() if want not in line]
    return Statistics([p for p in due if want in lines[p]], reports, problems)


# -------------------------------------------------------------------- summary


def _span(periods: list[str]) -> str:
    if not periods:
        return "none"
    return periods[0] if len(periods) == 1 else f"{periods[0]} to {periods[-1]}"


def _cases(node: Node, status: str) -> int:
    total, offset = 0, 0
    while True:
        page = node.api.get(f"{API}/cases?status={status}&limit=500&offset={offset}")["cases"]
        total += len(page)
        if len(page) < 500:
            return total
        offset += 500


def office_lines(cluster: Cluster, seeded: dict[str, Seeded], today: dt.date) -> list[str]:
    year_ago = sample.add_months(today.replace(day=1), -12).isoformat()
    lines = ["Offices (area, cases open and closed now)"]
    new_by_area: Counter[str] = Counter()
    offices_by_area: Counter[str] = Counter()
    for key, node in cluster.nodes.items():
        open_cases, closed = _cases(node, "open"), _cases(node, "closed")
        lines.append(
            f"  {node.office.name:<20} {node.office.area:<28} {node.node_id:<20}"
            f" {open_cases:>4} open, {closed:>4} closed"
        )
        new = sum(1 for s in seeded[key].cases.values() if s.case["opened"] >= year_ago)
        new_by_area[node.office.area] += new
        offices_by_area[node.office.area] += 1
    lines += ["", "Areas (cases opened in the last 12 months)"]
    for area, offices in offices_by_area.items():
        new = new_by_area[area]
        lines.append(
            f"  {area:<28} {offices} office{'s' if offices > 1 else ' '}"
            f" {new:>5} cases, {new // offices:>4} per office"
        )
    return lines


def referral_lines(cluster: Cluster, followed: list[Outcome], more: list[Outcome]) -> list[str]:
    names = {key: node.office.name for key, node in cluster.nodes.items()}
    lines = ["Referrals (this month: the API dates a referral and its answer when they happen)"]
    for i, out in enumerate(followed, 1):
        p = out.plan
        result = out.state + (f" ({out.reason})" if out.reason else "")
        result += f': "{out.note}"' if out.note else ""
        lines.append(f"  {i}. {names[p.sender]} -> {names[p.recipient]} ({p.target}): {result}")
        lines.append(f"     fields sent with consent: {', '.join(p.fields)}")
        lines.append(f"     seen by the sender after {out.seconds:.1f} s: {' > '.join(out.events)}")
    every = followed + more
    states = Counter(
        "waiting" if o.state == "delivered" else "declined" if o.state == "declined" else "taken"
        for o in every
    )
    lines.append(
        f"  {len(every)} referrals in all: {states['taken']} accepted, "
        f"{states['declined']} declined, {states['waiting']} waiting for an answer"
    )
    reasons = Counter(o.reason for o in every if o.state == "declined")
    lines.append(
        "  declined for: " + ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()) if r)
    )
    for key in cluster.nodes:
        got = [o for o in every if o.plan.recipient == key]
        no = sum(1 for o in got if o.state == "declined")
        wait = sum(1 for o in got if o.state == "delivered")
        lines.append(
            f"  {names[key]:<20} received {len(got):>2}: {len(got) - no - wait:>2} accepted,"
            f" {no:>2} declined, {wait} waiting"
        )
    return lines


def past_lines(past: list[PastOutcome], months: int) -> list[str]:
    declined = Counter(o.reason or "other" for o in past if o.state == "declined")
    bands: Counter[str] = Counter()
    for o in past:
        days = (o.answered - o.sent).days if o.answered else 0
        bands[next(b for limit, b in _BANDS if days <= limit)] += 1
    return [
        f"Referrals of the past {months} months (dated on the demo's clock; in the statistics)",
        f"  {len(past)} answered: {len(past) - sum(declined.values())} accepted, "
        f"{sum(declined.values())} declined",
        "  declined for: " + ", ".join(f"{r} {n}" for r, n in sorted(declined.items())),
        "  answered after: " + ", ".join(f"{b} {bands[b]}" for _, b in _BANDS if bands[b]),
    ]


_BANDS = (
    (0, "same_day"),
    (3, "1_3_days"),
    (7, "4_7_days"),
    (14, "8_14_days"),
    (10**6, "over_14_days"),
)


def statistics_lines(stats: Statistics, cluster: Cluster) -> list[str]:
    months = [p for p in stats.published if "Q" not in p]
    quarters = [p for p in stats.published if "Q" in p]
    lines = ["Statistics (each office sealed its reports in time; published after the last)"]
    lines.append(f"  months               {_span(months)} ({len(months)})")
    lines.append(f"  quarters             {_span(quarters)} ({len(quarters)})")
    for key, answers in stats.reports.items():
        cells = [a["cell_count"] for a in answers if "cell_count" in a]
        sent = sum(1 for a in answers if a["state"] == "submitted")
        size = f", {min(cells)} to {max(cells)} cells each" if cells else ""
        lines.append(f"  {cluster.nodes[key].office.name:<20} {sent} reports{size}")
    lines += [f"  problem: {p}" for p in stats.problems]
    return lines


def api_lines(cluster: Cluster, root: Path, keep: bool) -> list[str]:
    hub_url = cluster.hub.url if cluster.hub is not None else "?"
    lines = [
        "Try the APIs (every route but /health, /status and the spec needs the token)",
        f"  hub                  {hub_url}",
    ]
    for node in cluster.nodes.values():
        lines.append(f"  {node.office.name:<20} {node.service.url}  token {node.api.token}")
    first = next(iter(cluster.nodes.values()))
    lines += [
        "  spec                 " + first.service.url + f"{API}/openapi.yaml",
        "",
        f'  curl -s -H "Authorization: Bearer {first.api.token}" \\',
        f"    {first.service.url}{API}/referrals/outgoing",
        "",
        f"  logs: {root}/*.log" + ("" if keep else " (removed on exit; --dir DIR keeps them)"),
    ]
    return lines


# The dashboard's views: path and what to look at there.
VIEWS: tuple[tuple[str, str], ...] = (
    ("/dashboard", "Überblick: the newest month's key figures and completeness"),
    ("/dashboard/trends", "Verlauf: the months and quarters side by side"),
    ("/dashboard/areas", "Gebiete: cases per area and per office"),
    ("/dashboard/referrals", "Verweisungen: sent, accepted, declined and why"),
    ("/dashboard/table", "Tabellen: any measure by any breakdown, CSV"),
)


def dashboard_lines(cluster: Cluster, stats: Statistics, token: str) -> list[str]:
    hub_url = cluster.hub.url if cluster.hub is not None else "?"
    newest = [p for p in stats.published if "Q" not in p][-1:]
    query = f"?period={newest[0]}" if newest else ""
    lines = [
        "Where to look: the coordinators' dashboard",
        f"  log in               {hub_url}/dashboard/login  (paste the coordinator token)",
        f"  coordinator token    {token}",
        "  views:",
    ]
    for path, what in VIEWS:
        url = f"{hub_url}{path}{query if path == '/dashboard' else ''}"
        lines.append(f"    - {url:<48} {what}")
    lines += [
        "  coordinator API:",
        f'    curl -s -H "Authorization: Bearer {token}" {hub_url}/coordinator/v1/periods',
    ]
    return lines


def shutdown(cluster: Cluster) -> None:
    """Stop every process, nodes first; kill what does not stop in time."""
    services = [node.service for node in cluster.nodes.values()]
    if cluster.hub is not None:
        services.append(cluster.hub)
    for service in services:
        try:
            service.stop()
        except ClusterError:
            service.kill()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def start(cluster: Cluster, months: int, timeout: float) -> None:
    """The hub, then every office enrolled, then every node started."""
    cluster.start_hub(
        grace_days=None,  # the hub's default: the reports arrive in time
        # Maintenance every second: after a move of the demo's clock the hub
        # re-signs the directory at once, not a minute later.
        relay={"expiry_interval": 1.0},
        # Certificates issued at the start of the history outlive it.
        enrollment={"cert_ttl": (months * 31 + 730) * 86400},
        # A directory valid for 30 days, re-signed when 20 are left: a move of
        # the clock (MAX_HOP, 5 days) never outruns it, even before the hub's
        # next maintenance pass has re-signed it.
        directory={"ttl": 30 * 86400, "resign_before": 20 * 86400},
    )
    for node in cluster.add_nodes([(o.key, o.office) for o in OFFICES]):
        # A refusal in the moment the clock moves (the hub and a node read the
        # new time a few milliseconds apart) costs a second or two, not minutes.
        set_node_options(node.service.data_dir, "sync", {"min_backoff": 0.5, "max_backoff": 2.0})
    # Every office is enrolled before any node starts, so each node's first
    # directory already lists all of them.
    in_parallel(
        lambda node: node.service.start(timeout), cluster.nodes.values(), workers=len(OFFICES)
    )
    cluster.wait_directory(timeout)


def run(args: argparse.Namespace, root: Path) -> int:
    clock = DemoClock(root / OFFSET_FILE)
    cluster = Cluster(root, clock=clock.path)
    began = time.monotonic()

    def since() -> str:
        return f"({time.monotonic() - began:.0f} s)"

    try:
        today = dt.date.today()
        first = history_start(today, args.months)
        # The processes start on the eve of the history, on the demo's clock.
        eve = dt.datetime.combine(first - dt.timedelta(days=1), dt.time(STEP_HOUR), HUB_ZONE)
        clock.start_at(eve.timestamp())
        print(f"starting a hub and {len(OFFICES)} offices in {root} ...", flush=True)
        start(cluster, args.months, args.timeout)
        print(f"recording the offices' cases since {first:%B %Y} ... {since()}", flush=True)
        seeded = {
            s.key: s
            for s in in_parallel(
                lambda o: seed_office(cluster.nodes[o.key], o, args.seed, args.cases, first, today),
                OFFICES,
                workers=len(OFFICES),
            )
        }
        print(
            f"living through {args.months} months: referrals, answers, reports ... {since()}",
            flush=True,
        )
        past, reports, taken = run_past(
            cluster,
            clock,
            seeded,
            random.Random(f"{args.seed}:past"),
            first,
            args.months,
            args.timeout,
        )
        move_clock(cluster, clock, dt.datetime.now(HUB_ZONE), args.timeout)
        write_offset(clock.path, 0.0)  # real time from here on
        settle(cluster, args.timeout)
        print(f"sending this month's referrals ... {since()}", flush=True)
        followed, more = run_referrals(
            cluster, seeded, random.Random(f"{args.seed}:referrals"), args.timeout, taken
        )
        print(f"publishing the statistics ... {since()}", flush=True)
        with ThreadPoolExecutor(max_workers=1) as aside:
            token = aside.submit(cluster.coordinator_token)  # a command line: meanwhile
            stats = statistics(cluster, first, reports)
        lines = [
            "",
            f"mbe-sync demo: a hub and {len(cluster.nodes)} offices on 127.0.0.1 (data in {root})",
            "",
            *office_lines(cluster, seeded, today),
            "",
            *referral_lines(cluster, followed, more),
            "",
            *past_lines(past, args.months),
            "",
            *statistics_lines(stats, cluster),
            "",
            *api_lines(cluster, root, keep=args.dir is not None),
            "",
            *dashboard_lines(cluster, stats, token.result()),
        ]
        print("\n".join(lines))
        referrals = len(followed) + len(more)
        if stats.problems or not stats.published:
            raise DemoError(f"statistics: {len(stats.problems)} problem(s), see above")
        print(
            f"\ndemo: OK, all {referrals} referrals reached their outcome, "
            f"{len(stats.published)} periods published {since()}",
            flush=True,
        )
        if args.once:
            return 0
        print("running; press Ctrl-C to stop", flush=True)
        while True:
            for service in [cluster.hub, *(n.service for n in cluster.nodes.values())]:
                proc = service.proc if service is not None else None
                if service is not None and proc is not None and proc.poll() is not None:
                    raise DemoError(f"{service.log_path.stem} exited; see {service.log_path}")
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0 if not args.once else 130
    finally:
        shutdown(cluster)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n")[0])
    p.add_argument("--once", action="store_true", help="run the scenario, print, exit")
    p.add_argument("--dir", type=Path, help="data directory (kept); default: a temporary one")
    p.add_argument("--seed", type=int, default=2026, help="seed of the sample data")
    p.add_argument(
        "--cases",
        type=float,
        default=8,
        help="new cases a month at an average office (the offices' loads are multiples)",
    )
    p.add_argument(
        "--months", type=int, default=15, help="months of history before the current one"
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each step")
    args = p.parse_args(argv)
    if not 0 < args.cases <= 100:
        p.error("--cases must be more than 0 and at most 100")
    if not 1 <= args.months <= 36:
        p.error("--months must be between 1 and 36")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dir is not None:
        if args.dir.exists() and any(args.dir.iterdir()):
            print(f"demo: {args.dir} is not empty; give a new or empty directory", file=sys.stderr)
            return 2
        args.dir.mkdir(parents=True, exist_ok=True)
        root = args.dir
    else:
        root = Path(tempfile.mkdtemp(prefix="mbe-demo-"))
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = run(args, root)
    except (DemoError, ClusterError, ApiError, OSError) as exc:
        print(f"demo: FAILED: {exc} (logs in {root})", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 -- outermost CLI boundary: one clear line, non-zero exit
        print(f"demo: FAILED: {type(exc).__name__}: {exc} (logs in {root})", file=sys.stderr)
        return 1
    if args.dir is None:
        shutil.rmtree(root, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
