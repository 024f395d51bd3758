"""The client's access export (Art. 15 and 20 GDPR, § 17 and § 22 KDG, § 19 and § 24 DSG-EKD).

`client_export(ctx, case_id)` gathers everything this node holds about the
client of one case: every column of the case, its contacts, support
agreements and consents, every referral with this case in either direction
with its history, when the data will be deleted, and who opened the case when
(the audit log). The result is plain JSON (machine-readable and portable);
node/api/export_page.py renders the same dict as a German document for the
client.

What is exported is listed here column by column (`COLUMNS`), and what is
deliberately left out with its reason (`NOT_EXPORTED`). tests/node/test_export.py
compares both with the tables, so a column added to a client table fails the
tests until it is exported or its omission is justified here.

The export is audited as `case.export` in the same transaction as the read
(`audited_export`), so no export goes unrecorded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from node.domain.retention import erase_on
from node.errors import NotEnrolled
from node.storage.access import Access
from node.storage.cases import Cases
from node.storage.context import StoreContext, iso, loads_list
from node.storage.db import transaction
from node.storage.network import Network

EXPORT_FORMAT = "mbe-sync.client-export"
EXPORT_VERSION = 1
EXPORT_ACTION = "case.export"
# Without a regime named by the office or by a consent, the GDPR applies.
DEFAULT_REGIME = "gdpr"

# Every column of the client tables the export shows, in the order shown.
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "cases": (
        "id",
        "pseudonym",
        "given_name",
        "family_name",
        "birth_year",
        "gender",
        "nationality",
        "residence_status",
        "entry_month",
        "german_level",
        "languages",
        "family_members",
        "phone",
        "email",
        "address",
        "topics",
        "note",
        "case_type",
        "counsellor",
        "opened",
        "closed",
        "closure_reason",
        "origin_referral",
        "created",
        "updated",
    ),
    "contacts": ("id", "date", "channel", "minutes", "topics", "created"),
    "agreements": ("id", "agreed", "goals", "created", "updated"),
    "consents": (
        "id",
        "purpose",
        "recipient",
        "fields",
        "given",
        "expires",
        "withdrawn",
        "form",
        "legal_regime",
        "created",
    ),
    "referrals": (
        "id",
        "direction",
        "peer",
        "target_type",
        "fields",
        "client",
        "note",
        "reply_note",
        "consent_id",
        "consent",
        "state",
        "reason",
        "created",
        "updated",
        "offer_msg_id",
    ),
    "referral_events": ("at", "event", "state", "reason", "msg_id", "date"),
    # Who opened or changed the case: `actor` is the pseudonymous id of the
    # acting staff member (X-Acting-User, migration 0008), None if none was sent.
    "audit": ("at", "app", "actor", "action", "referral_id"),
}

# Columns of the client tables the export leaves out, each with its reason.
NOT_EXPORTED: Mapping[str, Mapping[str, str]] = {
    "cases": {},
    "contacts": {"case_id": "the export is of this one case; its id is the case's `id`"},
    "agreements": {"case_id": "the export is of this one case; its id is the case's `id`"},
    "consents": {"case_id": "the export is of this one case; its id is the case's `id`"},
    "referrals": {"case_id": "the export is of this one case; its id is the case's `id`"},
    "referral_events": {
        "seq": "row order only: the events are listed in that order",
        "referral_id": "the events are listed under their referral",
        "direction": "the events are listed under their referral, which has it",
    },
    "audit": {
        "seq": "row order only: the accesses are listed in that order",
        "case_id": "the export is of this one case; its id is the case's `id`",
        "hash": "the log's hash chain proves its integrity; it says nothing about the client",
    },
}

# Columns holding JSON (lists of codes or field names, maps of received values).
_JSON_COLUMNS = frozenset({"languages", "topics", "goals", "fields", "client", "consent"})
# Columns holding Unix seconds, shown as RFC 3339 timestamps.
_TIME_COLUMNS = frozenset({"created", "updated", "at"})


def _value(column: str, value: Any) -> Any:
    if column in _TIME_COLUMNS:
        return iso(value)
    if column in _JSON_COLUMNS:
        if value is None:
            return [] if column in {"languages", "topics", "fields"} else None
        decoded = json.loads(value)
        return decoded if column in {"client", "consent"} else loads_list(value)
    return value


def _rows(
    ctx: StoreContext, table: str, where: str, params: tuple[Any, ...], order: str
) -> list[dict[str, Any]]:
    """The exported columns of `table`'s rows; the clauses are fixed text of this module."""
    cols = ", ".join(COLUMNS[table])
    sql = f"SELECT {cols} FROM {table} WHERE {where} ORDER BY {order}"  # noqa: S608 -- fixed names
    return [{c: _value(c, row[c]) for c in COLUMNS[table]} for row in ctx.all(sql, params)]


def legal_regime(consents: list[dict[str, Any]]) -> dict[str, str]:
    """The data protection law the office works under, as far as the node knows it.

    node.toml has no setting for it (yet): the consents the office recorded
    name it. All consents of one office name the same regime; if they differ,
    the newest one counts. Without any consent: the GDPR, and the export says
    it is a default (`source`).
    """
    if not consents:
        return {"code": DEFAULT_REGIME, "source": "default"}
    newest = max(consents, key=lambda c: (c["given"], c["created"] or "", c["id"]))
    return {"code": str(newest["legal_regime"]), "source": "consents"}


def _retention(ctx: StoreContext, case: Mapping[str, Any], retention_years: int) -> dict[str, Any]:
    """When the case's data will be deleted (docs/client-rights.md, "Retention")."""
    hold_row = ctx.one("SELECT reason, since FROM retention_holds WHERE case_id = ?", (case["id"],))
    hold = (
        None
        if hold_row is None
        else {"reason": hold_row["reason"], "since": iso(hold_row["since"])}
    )
    closed = case["closed"]
    out: dict[str, Any] = {"years": retention_years, "erase_on": None, "hold": hold}
    if closed is None:
        out["status"] = "open"  # not scheduled: the case is open
    else:
        out["erase_on"] = erase_on(closed, retention_years)
        out["status"] = "held" if hold is not None else "scheduled"
    return out


def _accesses(ctx: StoreContext, case_id: str) -> list[dict[str, Any]]:
    """Who opened or changed the case, when, and how (the audit log, oldest first)."""
    return _rows(ctx, "audit", "case_id = ?", (case_id,), "seq")


def _erasure_requests(ctx: StoreContext, case_id: str) -> list[dict[str, Any]]:
    """Erasure notices another office sent about the referral this case was opened from."""
    rows = ctx.all(
        "SELECT referral_id, peer, received, erased, kept, settled, settlement"
        " FROM erasure_requests WHERE case_id = ? ORDER BY received, referral_id",
        (case_id,),
    )
    return [
        r
        | {
            "received": iso(r["received"]),
            "settled": iso(r["settled"]),
            "erased": loads_list(r["erased"]),
            "kept": loads_list(r["kept"]),
        }
        for r in rows
    ]


def _office_names(ctx: StoreContext) -> dict[str, str]:
    """Node id -> office name from the stored directory; empty if there is none usable."""
    try:
        directory = Network(ctx).directory()
    except NotEnrolled:
        return {}
    return {office.node_id: office.name for office in directory.offices}


def _node_id(ctx: StoreContext) -> str | None:
    row = ctx.one("SELECT node_id FROM enrollment WHERE id = 1")
    return None if row is None else str(row["node_id"])


def client_export(
    ctx: StoreContext, case_id: str, *, retention_years: int, office_name: str
) -> dict[str, Any]:
    """Everything the node holds about the client of `case_id`, as JSON-ready data.

    Raises NotFound for an unknown case and Gone for an erased one (Cases.row).
    `retention_years`: how many years after the end of the closing year a
    closed case is kept (`[retention] years` in node.toml); `office_name`:
    `node.name` from node.toml.
    """
    Cases(ctx).row(case_id)
    (case,) = _rows(ctx, "cases", "id = ?", (case_id,), "id")
    by_case = (case_id,)
    consents = _rows(ctx, "consents", "case_id = ?", by_case, "given, created, id")
    referrals = _rows(ctx, "referrals", "case_id = ?", by_case, "created, id")
    names = _office_names(ctx)
    for consent in consents:
        consent["recipient_name"] = names.get(consent["recipient"])
    for ref in referrals:
        ref["peer_name"] = names.get(ref["peer"])
        ref["history"] = _rows(
            ctx,
            "referral_events",
            "referral_id = ? AND direction = ?",
            (ref["id"], ref["direction"]),
            "seq",
        )
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "generated": iso(ctx.now()),
        "office": {"name": office_name, "node_id": _node_id(ctx)},
        "legal_regime": legal_regime(consents),
        "case": case,
        "contacts": _rows(ctx, "contacts", "case_id = ?", by_case, "date, id"),
        "agreements": _rows(ctx, "agreements", "case_id = ?", by_case, "agreed, id"),
        "consents": consents,
        "referrals": referrals,
        "retention": _retention(ctx, case, retention_years),
        "erasure_requests": [
            r | {"peer_name": names.get(r["peer"])} for r in _erasure_requests(ctx, case_id)
        ],
        "accesses": _accesses(ctx, case_id),
    }


def audited_export(
    ctx: StoreContext,
    access: Access,
    case_id: str,
    *,
    app: str,
    retention_years: int,
    office_name: str,
    actor: str | None = None,
) -> dict[str, Any]:
    """`client_export`, with its `case.export` audit row in the same transaction.

    The row is written first, so the export lists itself among the accesses.
    An unknown or erased case raises before anything is written.
    """
    with transaction(ctx.db):
        Cases(ctx).row(case_id)
        access.audit(app, EXPORT_ACTION, case_id=case_id, actor=actor)
        return client_export(ctx, case_id, retention_years=retention_years, office_name=office_name)
