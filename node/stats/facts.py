"""What the statistics need from the case store, read in one pass.

`load_facts` runs a handful of SELECTs on the caller's thread (in the server
the database thread, node/storage/thread.py) and returns frozen values; the
counting in node.stats.compute is pure and may then run in a worker thread.
Nothing here leaves the node: names, notes and contact details are not even
read. The one write is the office's statistics secret, made once on first use
(`stats_secret`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from node.storage.context import StoreContext
from node.storage.db import transaction
from protocol.cellkeys import SECRET_BYTES


@dataclass(frozen=True)
class CaseFact:
    case_id: str
    opened: str  # YYYY-MM-DD
    closed: str | None
    case_type: str
    closure_reason: str | None
    birth_year: int | None
    gender: str | None
    nationality: str | None
    residence: str | None
    entry_month: str | None  # YYYY-MM
    family_members: int
    topics: tuple[str, ...]
    first_agreement: str | None  # date of the earliest support agreement


@dataclass(frozen=True)
class ContactFact:
    contact_id: str
    case_id: str
    date: str
    channel: str


@dataclass(frozen=True)
class ReferralFact:
    """An outgoing referral, dated by the node's local calendar.

    `accepted` / `declined`: when the answer arrived (a referral is answered
    once: the outgoing state machine leaves `delivered` by one of the two);
    `stopped`: the first expiry or withdrawal, after which it no longer waits
    for an answer. The dates of the answer and of the end of waiting default
    to None so that facts made by hand (tests, benchmarks) need not name them.
    """

    referral_id: str
    case_id: str | None
    target: str
    sent: str
    accepted: str | None
    sent_in_error: bool
    declined: str | None = None
    decline_reason: str | None = None
    stopped: str | None = None

    @property
    def answered(self) -> str | None:
        """The date the answer (acceptance or decline) arrived, or None."""
        return self.accepted or self.declined


@dataclass(frozen=True)
class Facts:
    cases: dict[str, CaseFact]
    contacts: tuple[ContactFact, ...]
    referrals: tuple[ReferralFact, ...]
    # The office's statistics secret: the key of every record's cell key.
    secret: bytes = field(repr=False)

    def earliest(self) -> str | None:
        """The first date anything happened, or None for an empty store."""
        dates = [c.opened for c in self.cases.values()] + [r.sent for r in self.referrals]
        return min(dates) if dates else None


def local_date(ts: int) -> str:
    """Unix seconds as the node's local calendar date (the office's reporting calendar)."""
    return dt.datetime.fromtimestamp(ts).date().isoformat()


def _topics(text: str | None) -> tuple[str, ...]:
    value = json.loads(text) if text else []
    if not isinstance(value, list):
        return ()
    return tuple(sorted({t for t in value if isinstance(t, str)}))


def stats_secret(ctx: StoreContext) -> bytes:
    """The office's statistics secret (migration 0006), made on first use."""
    row = ctx.one("SELECT secret FROM stats_secret WHERE id = 1")
    if row is None:
        with transaction(ctx.db):
            ctx.run(
                "INSERT OR IGNORE INTO stats_secret (id, secret) VALUES (1, ?)",
                (ctx.deps.random.token_bytes(SECRET_BYTES),),
            )
        row = ctx.one("SELECT secret FROM stats_secret WHERE id = 1")
    assert row is not None  # inserted above
    return bytes(row["secret"])


def load_facts(ctx: StoreContext) -> Facts:
    agreements = {
        r["case_id"]: r["first"]
        for r in ctx.all("SELECT case_id, MIN(agreed) AS first FROM agreements GROUP BY case_id")
    }
    cases = {
        r["id"]: CaseFact(
            case_id=r["id"],
            opened=r["opened"],
            closed=r["closed"],
            case_type=r["case_type"],
            closure_reason=r["closure_reason"],
            birth_year=r["birth_year"],
            gender=r["gender"],
            nationality=r["nationality"],
            residence=r["residence_status"],
            entry_month=r["entry_month"],
            family_members=int(r["family_members"] or 0),
            topics=_topics(r["topics"]),
            first_agreement=agreements.get(r["id"]),
        )
        for r in ctx.all(
            "SELECT id, opened, closed, case_type, closure_reason, birth_year, gender,"
            " nationality, residence_status, entry_month, family_members, topics FROM cases"
        )
    }
    contacts = tuple(
        ContactFact(contact_id=r["id"], case_id=r["case_id"], date=r["date"], channel=r["channel"])
        for r in ctx.all("SELECT id, case_id, date, channel FROM contacts")
    )
    accepted: dict[str, int] = {}
    declined: dict[str, tuple[int, str | None]] = {}
    stopped: dict[str, int] = {}
    in_error: set[str] = set()
    # The first of each event is the one that moved the state; a later one of the
    # same name can only have been recorded without moving it.
    for r in ctx.all(
        "SELECT referral_id, event, at, reason FROM referral_events"
        " WHERE direction = 'out' AND event IN ('accepted', 'declined', 'expire', 'withdraw')"
        " ORDER BY at, seq"
    ):
        rid, event, at = r["referral_id"], r["event"], int(r["at"])
        if event == "accepted":
            accepted.setdefault(rid, at)
        elif event == "declined":
            declined.setdefault(rid, (at, r["reason"]))
        else:
            stopped.setdefault(rid, at)
            if event == "withdraw" and r["reason"] == "sent_in_error":
                in_error.add(rid)
    referrals = tuple(
        ReferralFact(
            referral_id=r["id"],
            case_id=r["case_id"],
            target=r["target_type"],
            sent=local_date(int(r["created"])),
            accepted=local_date(accepted[r["id"]]) if r["id"] in accepted else None,
            sent_in_error=r["id"] in in_error,
            declined=local_date(declined[r["id"]][0]) if r["id"] in declined else None,
            decline_reason=declined[r["id"]][1] if r["id"] in declined else None,
            stopped=local_date(stopped[r["id"]]) if r["id"] in stopped else None,
        )
        for r in ctx.all(
            "SELECT id, case_id, target_type, created FROM referrals WHERE direction = 'out'"
        )
    )
    return Facts(cases=cases, contacts=contacts, referrals=referrals, secret=stats_secret(ctx))
