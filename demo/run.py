"""`make demo`: a hub and three offices on localhost, sample cases, three referrals.

Everything goes through the real command lines and the node API, as an
administrator and a counselling app would use them. The scenario: every office
gets generated cases (contacts, Förderpläne, some closed); then

1. Caritas Nürnberg refers a young client to the JMD at AWO Fürth: accepted;
2. AWO Fürth refers a client to the debt counselling at Diakonie Erlangen:
   declined (no capacity);
3. Diakonie Erlangen refers a client to the psychosocial centre at Caritas
   Nürnberg: accepted, first appointment held, completed successfully.

Each outcome is awaited at the sending office. Then the summary, the URLs and
the app tokens are printed and the demo runs until Ctrl-C; `--once` exits
after the summary (0 when every referral reached its outcome, 1 otherwise).
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from demo import sample
from demo.cluster import ApiError, Cluster, Node, Office
from demo.processes import ClusterError

T = TypeVar("T")
API = "/api/v1"


class DemoError(Exception):
    """The scenario did not go as it should; the message says which step."""


@dataclass(frozen=True)
class DemoOffice:
    key: str
    office: Office
    locale: sample.Locale


OFFICES: tuple[DemoOffice, ...] = (
    DemoOffice(
        "caritas",
        Office(
            "Caritas Nürnberg",
            "Caritas",
            ("mbe", "psychosocial", "recognition"),
            ("de", "ar", "fa", "ru", "en"),
            "Nürnberg",
        ),
        sample.Locale(
            "Nürnberg",
            ("90402", "90429", "90439", "90443", "90459", "90478"),
            ("Fürther Straße", "Gibitzenhofstraße", "Allersberger Straße", "Pillenreuther Straße"),
            ("S. Wagner", "M. Yıldız", "K. Hofmann"),
            "CAR",
            "kdg",
        ),
    ),
    DemoOffice(
        "awo",
        Office(
            "AWO Fürth",
            "AWO",
            ("mbe", "jmd", "integration_course"),
            ("de", "tr", "uk", "ru", "ro", "en"),
            "Fürth",
        ),
        sample.Locale(
            "Fürth",
            ("90762", "90763", "90765", "90766"),
            ("Schwabacher Straße", "Königswarterstraße", "Flößaustraße", "Nürnberger Straße"),
            ("A. Kovalenko", "T. Becker", "D. Şahin"),
            "AWO",
            "gdpr",
        ),
    ),
    DemoOffice(
        "diakonie",
        Office(
            "Diakonie Erlangen",
            "Diakonie",
            ("mbe", "debt_counselling", "recognition"),
            ("de", "en", "fr", "ar", "ti"),
            "Erlangen",
        ),
        sample.Locale(
            "Erlangen",
            ("91052", "91054", "91056", "91058"),
            ("Nürnberger Straße", "Äußere Brucker Straße", "Hartmannstraße", "Paul-Gossen-Straße"),
            ("J. Schneider", "L. Haile", "R. Krämer"),
            "DIA",
            "dsg_ekd",
        ),
    ),
)


@dataclass(frozen=True)
class Plan:
    """One referral of the scenario and what the receiving office does with it."""

    sender: str
    recipient: str
    target: str
    purpose: str
    topics: tuple[str, ...]
    fields: tuple[str, ...]
    answer: str  # accept | decline | complete
    expect: str  # the final state the sender must see
    young: bool = False


PLANS: tuple[Plan, ...] = (
    Plan(
        "caritas",
        "awo",
        "jmd",
        "Weiterleitung an den Jugendmigrationsdienst",
        ("education_childcare", "language_course"),
        ("given_name", "family_name", "phone", "languages", "german_level", "topics"),
        "accept",
        "accepted",
        young=True,
    ),
    Plan(
        "awo",
        "diakonie",
        "debt_counselling",
        "Weiterleitung an die Schuldnerberatung",
        ("debt", "benefits_livelihood"),
        ("given_name", "family_name", "phone", "languages", "topics"),
        "decline",
        "declined",
    ),
    Plan(
        "diakonie",
        "caritas",
        "psychosocial",
        "Weiterleitung an das Psychosoziale Zentrum",
        ("health", "family"),
        ("given_name", "family_name", "phone", "birth_year", "languages", "topics"),
        "complete",
        "completed_successful",
    ),
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


def _referral(node: Node, direction: str, referral_id: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = node.api.get(f"{API}/referrals/{direction}/{referral_id}")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return found


def seed_office(node: Node, locale: sample.Locale, rng: random.Random, count: int) -> int:
    """Open `count` generated cases with contacts, agreements and some closures."""
    today = dt.date.today()
    for number in range(1, count + 1):
        body = sample.case(rng, locale, today, number)
        case_id = node.api.post(f"{API}/cases", body)["id"]
        for contact in sample.contacts(rng, body, today):
            node.api.post(f"{API}/cases/{case_id}/contacts", contact)
        if body["case_type"] == "case_management":
            node.api.post(f"{API}/cases/{case_id}/agreements", sample.agreement(rng, body, today))
        closing = sample.closure(rng, body, today)
        if closing is not None:
            node.api.post(f"{API}/cases/{case_id}/close", closing)
    return count


def run_plan(
    cluster: Cluster, plan: Plan, rng: random.Random, number: int, timeout: float
) -> Outcome:
    """Open the client's case at the sender, record consent, refer, answer, await the outcome."""
    today = dt.date.today()
    sender = cluster.nodes[plan.sender]
    recipient = cluster.nodes[plan.recipient]
    locale = next(o.locale for o in OFFICES if o.key == plan.sender)
    body = sample.case(rng, locale, today, number) | {
        "case_type": "case_management",
        "topics": list(plan.topics),
        "phone": sample.phone(rng),
    }
    if plan.young:
        body |= {"birth_year": today.year - 22, "german_level": "A2"}
    case_id = sender.api.post(f"{API}/cases", body)["id"]
    for contact in sample.contacts(rng, body, today):
        sender.api.post(f"{API}/cases/{case_id}/contacts", contact)
    consent = sample.consent(
        rng,
        locale,
        today,
        recipient=recipient.node_id,
        recipient_name=recipient.office.name,
        fields=list(plan.fields),
        purpose=plan.purpose,
    )
    sender.api.post(f"{API}/cases/{case_id}/consents", consent)
    started = time.monotonic()
    rid = sender.api.post(
        f"{API}/referrals/outgoing",
        {
            "case_id": case_id,
            "recipient": recipient.node_id,
            "target_type": plan.target,
            "fields": list(plan.fields),
        },
    )["id"]
    wait_for(
        lambda: _referral(recipient, "incoming", rid),
        f"{recipient.office.name} to receive the referral",
        timeout,
    )
    inc = f"{API}/referrals/incoming/{rid}"
    if plan.answer == "decline":
        recipient.api.post(
            f"{inc}/decline",
            {"reason": "no_capacity", "note": "Wartezeit derzeit über drei Monate"},
        )
    else:
        recipient.api.post(
            f"{inc}/accept",
            {"case_type": "case_management", "counsellor": recipient_counsellor(plan)},
        )
    if plan.answer == "complete":
        recipient.api.post(f"{inc}/status", {"outcome": "first_appointment"})
        recipient.api.post(f"{inc}/status", {"outcome": "completed_successful"})

    def final() -> dict[str, Any] | None:
        ref = _referral(sender, "outgoing", rid)
        return ref if ref is not None and ref["state"] == plan.expect else None

    ref = wait_for(final, f"{sender.office.name} to see '{plan.expect}'", timeout)
    return Outcome(
        plan,
        rid,
        ref["state"],
        ref.get("reason"),
        ref.get("reply_note"),
        time.monotonic() - started,
        tuple(e["state"] for e in ref["history"]),
    )


def recipient_counsellor(plan: Plan) -> str:
    return next(o.locale.counsellors[0] for o in OFFICES if o.key == plan.recipient)


def _count(node: Node, path: str, key: str) -> int:
    return len(node.api.get(f"{API}/{path}")[key])


def summary(cluster: Cluster, outcomes: list[Outcome], root: Path, keep: bool) -> list[str]:
    names = {key: node.office.name for key, node in cluster.nodes.items()}
    hub_url = cluster.hub.url if cluster.hub is not None else "?"
    lines = [
        "",
        f"mbe-sync demo: a hub and {len(cluster.nodes)} offices on 127.0.0.1 (data in {root})",
        "",
        "Offices",
    ]
    for node in cluster.nodes.values():
        open_cases = _count(node, "cases?status=open&limit=500", "cases")
        closed = _count(node, "cases?status=closed&limit=500", "cases")
        lines.append(
            f"  {node.office.name:<20} {node.node_id:<20} {open_cases:>3} open, "
            f"{closed:>2} closed cases"
        )
    lines += ["", "Referrals"]
    for i, out in enumerate(outcomes, 1):
        p = out.plan
        result = out.state + (f" ({out.reason})" if out.reason else "")
        result += f': "{out.note}"' if out.note else ""
        lines.append(f"  {i}. {names[p.sender]} -> {names[p.recipient]} ({p.target}): {result}")
        lines.append(f"     fields sent with consent: {', '.join(p.fields)}")
        lines.append(f"     seen by the sender after {out.seconds:.1f} s: {' > '.join(out.events)}")
    lines += [
        "",
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
    # === STATISTICS (statistics issue) ==========================================
    # Each office seals last month's report to the hub through its own API; the hub
    # refuses periods that have not ended. A refusal is printed, not fatal: the
    # demo's referrals do not depend on it. The hub publishes a period once, after
    # its deadline; the demo publishes last month at once, as an operator may when
    # every office has reported (`mbe-hub stats publish`).
    period = (dt.date.today().replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    lines += ["", f"Statistics {period} (sealed to the hub by each office)"]
    for node in cluster.nodes.values():
        try:
            out = node.api.post(f"{API}/stats/submit", {"period": period})
            result = f"{out['state']}, revision {out['revision']}, {out['cell_count']} cells"
        except ApiError as exc:
            result = f"not submitted ({exc})"
        lines.append(f"  {node.office.name:<20} {result}")
    try:
        lines.append(f"  published            {cluster.publish_stats(period)}")
    except ClusterError as exc:
        lines.append(f"  not published ({exc})")
    lines += [
        f"  dashboard            {hub_url}/dashboard?period={period}",
        f"  coordinator token    {cluster.coordinator_token()}  (paste it on the login page)",
    ]
    # ============================================================================
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


def run(args: argparse.Namespace, root: Path) -> int:
    cluster = Cluster(root)
    try:
        print(f"starting a hub and {len(OFFICES)} offices in {root} ...", flush=True)
        cluster.start_hub()
        for demo_office in OFFICES:
            cluster.add_node(demo_office.key, demo_office.office, start=False)
        # Every office is enrolled before any node starts, so each node's first
        # directory already lists all of them.
        for node in cluster.nodes.values():
            node.service.start()
        cluster.wait_directory(args.timeout)
        rng = random.Random(args.seed)
        for demo_office in OFFICES:
            seed_office(cluster.nodes[demo_office.key], demo_office.locale, rng, args.cases)
        print("sample cases created; sending referrals ...", flush=True)
        outcomes = [
            run_plan(cluster, plan, rng, args.cases + i, args.timeout)
            for i, plan in enumerate(PLANS, 1)
        ]
        print("\n".join(summary(cluster, outcomes, root, keep=args.dir is not None)))
        print(f"\ndemo: OK, all {len(outcomes)} referrals reached their outcome", flush=True)
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
    p.add_argument("--cases", type=int, default=8, help="sample cases per office")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each step")
    return p.parse_args(argv)


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
