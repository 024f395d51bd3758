"""`make demo`: a hub and four offices on localhost with more than a year of history.

Everything goes through the real command lines and the node API, as an
administrator and a counselling app would use them. The scenario:

* four offices in three areas of the region; Fürth has one office for as many
  clients as Nürnberg's two (the imbalance a planner should spot);
* every office's past 15 months (`--months`): clients arriving month by month
  with the seasons and each office's trend, their contacts, Förderpläne and
  closures, all dated as they happened (the API takes those dates);
* this month's referrals between the offices, sent, received and answered:
  accepted, declined with each of the decline reasons, some still waiting. Three
  are followed and printed step by step:

  1. Caritas Nürnberg refers a young client to the JMD at AWO Fürth: accepted;
  2. AWO Fürth refers a client to the debt counselling at Diakonie Erlangen:
     declined (no capacity);
  3. Diakonie Erlangen refers a client to the psychosocial centre at Caritas
     Nürnberg: accepted, first appointment held, completed successfully.

* every office seals its report of each past month and quarter the hub still
  counts to the hub, and the operator publishes those periods at once.

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
from demo.cluster import DEMO_GRACE_DAYS, ApiError, Cluster, Node, Office, set_node_options
from demo.processes import ClusterError

T = TypeVar("T")
R = TypeVar("R")
API = "/api/v1"
# The hub's reporting time zone (hub.toml's default): a period's deadline is a day there.
HUB_ZONE = ZoneInfo("Europe/Berlin")
# Pseudonym numbers of the cases the referral plans open, apart from the history's.
PLAN_CASE_NUMBERS = 9000


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
    node: Node, plan: Plan, rng: random.Random, number: int
) -> tuple[str, sample.Body]:
    """A new client's case at the sender, with the plan's topics; its id and body."""
    today = dt.date.today()
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
) -> Sent:
    """Record the client's consent for the recipient and the fields, then refer."""
    sender = cluster.nodes[plan.sender]
    recipient = cluster.nodes[plan.recipient]
    purpose = plan.purpose or PURPOSE[plan.target]
    consent = sample.consent(
        rng,
        office(plan.sender).locale,
        dt.date.today(),
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
    cluster: Cluster, seeded: dict[str, Seeded], rng: random.Random, timeout: float
) -> tuple[list[Outcome], list[Outcome]]:
    """Send every referral, let each recipient answer, await each outcome at the sender.

    All are in flight at once: sent, then received, then answered, then seen by
    their senders. Returns (the followed three, the others).
    """
    sent: list[Sent] = []
    free = {key: s.open_cases() for key, s in seeded.items()}
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


# ----------------------------------------------------------------- statistics


@dataclass(frozen=True)
class PeriodSpan:
    id: str
    start: dt.date
    end: dt.date


def periods_since(start: dt.date, today: dt.date) -> list[PeriodSpan]:
    """The months and quarters from `start` on that have ended by `today`, oldest first."""
    out = []
    month = start
    while sample.month_end(month) < today:
        end = sample.month_end(month)
        out.append(PeriodSpan(month.strftime("%Y-%m"), month, end))
        if month.month % 3 == 0:
            first = sample.add_months(month, -2)
            if first >= start:
                out.append(PeriodSpan(f"{month.year}-Q{month.month // 3}", first, end))
        month = sample.add_months(month, 1)
    return out


def counted(period: PeriodSpan, hub_today: dt.date) -> bool:
    """Whether a report sent now still counts: the period's deadline has not passed.

    The hub fixes a period's numbers when its deadline day (end + grace_days) is
    over, from the reports it had by then; what arrives later counts nowhere
    (docs/statistics.md, "One publication per period").
    """
    return period.end + dt.timedelta(days=DEMO_GRACE_DAYS) >= hub_today


@dataclass(frozen=True)
class Statistics:
    published: list[str]  # periods, oldest first
    too_late: list[str]  # periods of the history whose deadline has passed
    reports: dict[str, list[dict[str, Any]]]  # office key -> its submit answers
    problems: list[str]


def statistics(cluster: Cluster, start: dt.date) -> Statistics:
    """Every office submits each past period the hub still counts; the operator publishes.

    Publishing a period before its deadline is the operator's early publication
    (`mbe-hub stats publish`), for when every office has reported.
    """
    spans = periods_since(start, dt.date.today())
    hub_today = dt.datetime.now(HUB_ZONE).date()
    due = [p.id for p in spans if counted(p, hub_today)]
    too_late = [p.id for p in spans if not counted(p, hub_today)]
    nodes = list(cluster.nodes.values())

    def submit_all(node: Node) -> list[dict[str, Any]]:
        out = []
        for period in due:
            try:
                out.append(node.api.post(f"{API}/stats/submit", {"period": period}))
            except ApiError as exc:
                out.append({"period": period, "state": f"not submitted ({exc})"})
        return out

    answers = in_parallel(submit_all, nodes, workers=len(nodes))
    try:
        lines = dict(zip(due, cluster.publish_periods(due), strict=True))
    except ClusterError as exc:
        lines = dict.fromkeys(due, f"not published ({exc})")
    problems = [
        f"{node.office.name} {a['period']}: {a['state']}"
        for node, got in zip(nodes, answers, strict=True)
        for a in got
        if a["state"] != "submitted"
    ]
    want = f"published from {len(nodes)} office report(s)"
    problems += [line for line in lines.values() if want not in line]
    return Statistics(
        [p for p in due if want in lines[p]],
        too_late,
        {key: a for key, a in zip(cluster.nodes, answers, strict=True)},
        problems,
    )


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


def statistics_lines(stats: Statistics, cluster: Cluster) -> list[str]:
    months = [p for p in stats.published if "Q" not in p]
    quarters = [p for p in stats.published if "Q" in p]
    lines = ["Statistics (each office sealed its reports to the hub; published at once)"]
    lines.append(f"  months               {_span(months)} ({len(months)})")
    lines.append(f"  quarters             {_span(quarters)} ({len(quarters)})")
    for key, answers in stats.reports.items():
        cells = [a["cell_count"] for a in answers if "cell_count" in a]
        sent = sum(1 for a in answers if a["state"] == "submitted")
        size = f", {min(cells)} to {max(cells)} cells each" if cells else ""
        lines.append(f"  {cluster.nodes[key].office.name:<20} {sent} reports{size}")
    if stats.too_late:
        lines.append(
            f"  not sent             {_span(stats.too_late)}: deadline passed (period end + "
            f"{DEMO_GRACE_DAYS} days, the hub's longest); a report now would count nowhere"
        )
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


def start(cluster: Cluster, timeout: float) -> None:
    """The hub, then every office enrolled, then every node started."""
    cluster.start_hub()
    for node in cluster.add_nodes([(o.key, o.office) for o in OFFICES]):
        # The node's own statistics scheduler looks back only as far as the hub
        # still counts reports; older months of the history stay on the node.
        set_node_options(node.service.data_dir, "stats", {"lookback_months": 12})
    # Every office is enrolled before any node starts, so each node's first
    # directory already lists all of them.
    in_parallel(
        lambda node: node.service.start(timeout), cluster.nodes.values(), workers=len(OFFICES)
    )
    cluster.wait_directory(timeout)


def run(args: argparse.Namespace, root: Path) -> int:
    cluster = Cluster(root)
    began = time.monotonic()

    def since() -> str:
        return f"({time.monotonic() - began:.0f} s)"

    try:
        print(f"starting a hub and {len(OFFICES)} offices in {root} ...", flush=True)
        start(cluster, args.timeout)
        today = dt.date.today()
        first = history_start(today, args.months)
        print(f"recording the offices' cases since {first:%B %Y} ... {since()}", flush=True)
        seeded = {
            s.key: s
            for s in in_parallel(
                lambda o: seed_office(cluster.nodes[o.key], o, args.seed, args.cases, first, today),
                OFFICES,
                workers=len(OFFICES),
            )
        }
        print(f"sending this month's referrals ... {since()}", flush=True)
        followed, more = run_referrals(
            cluster, seeded, random.Random(f"{args.seed}:referrals"), args.timeout
        )
        print(f"sending and publishing the statistics ... {since()}", flush=True)
        with ThreadPoolExecutor(max_workers=1) as aside:
            token = aside.submit(cluster.coordinator_token)  # a command line: meanwhile
            stats = statistics(cluster, first)
        lines = [
            "",
            f"mbe-sync demo: a hub and {len(cluster.nodes)} offices on 127.0.0.1 (data in {root})",
            "",
            *office_lines(cluster, seeded, today),
            "",
            *referral_lines(cluster, followed, more),
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
