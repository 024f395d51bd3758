"""Cases, contacts and support agreements (Förderplan) of the local case store."""

from __future__ import annotations

from typing import Any

from node.clock import new_id
from node.domain.validation import (
    CASE_FIELDS,
    CASE_NULLABLE,
    CASE_REQUIRED,
    LIST_FIELDS,
    check_fields,
    check_goals,
    code,
)
from node.errors import ConflictError, Gone, InvalidInput, NotFound
from node.storage.context import StoreContext, dumps, iso, loads_list
from node.storage.db import transaction
from protocol import codes
from protocol.payloads import DATE

_INT_FIELDS = frozenset({"birth_year", "family_members"})

CONTACT_FIELDS = {
    "date": code(DATE),
    "channel": code(codes.CONTACT_CHANNEL),
    "minutes": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1440,
    "topics": lambda v: (
        isinstance(v, list)
        and len(set(v)) == len(v)
        and all(codes.is_code(t, codes.TOPIC) for t in v)
    ),
}


def case_view(row: dict[str, Any]) -> dict[str, Any]:
    """A case row as the API shows it (lists decoded, timestamps as RFC 3339)."""
    out = {k: v for k, v in row.items() if k not in {"created", "updated"}}
    for key in LIST_FIELDS:
        out[key] = loads_list(row[key])
    out["created"] = iso(row["created"])
    out["updated"] = iso(row["updated"])
    return out


class Cases:
    """Create, read, update and close cases; record contacts and agreements."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    # ------------------------------------------------------------------ cases

    def _encode(self, data: dict[str, Any]) -> dict[str, Any]:
        return {k: dumps(v) if k in LIST_FIELDS else v for k, v in data.items()}

    def create(self, data: dict[str, Any], *, origin_referral: str | None = None) -> str:
        fields = check_fields(data, CASE_FIELDS, "case", required=CASE_REQUIRED)
        fields.setdefault("opened", self.ctx.today())
        case_id = new_id(self.ctx.deps.random)
        now = self.ctx.now()
        row = self._encode(fields) | {
            "id": case_id,
            "origin_referral": origin_referral,
            "created": now,
            "updated": now,
        }
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with transaction(self.ctx.db):
            self.ctx.run(f"INSERT INTO cases ({cols}) VALUES ({marks})", tuple(row.values()))  # noqa: S608 -- column names come from CASE_FIELDS, not from input
        return case_id

    def row(self, case_id: str) -> dict[str, Any]:
        row = self.ctx.one("SELECT * FROM cases WHERE id = ?", (case_id,))
        if row is None:
            self.check_not_erased(case_id)
            raise NotFound(f"case {case_id[:40]} not found")
        return row

    def check_not_erased(self, case_id: str) -> None:
        """Raise Gone (410) for a case that was erased (table erased_cases)."""
        erased = self.ctx.one("SELECT erased FROM erased_cases WHERE case_id = ?", (case_id,))
        if erased is not None:
            raise Gone(f"case {case_id[:40]} was erased on {iso(erased['erased'])}")

    def get(self, case_id: str) -> dict[str, Any]:
        return case_view(self.row(case_id))

    def list_cases(
        self, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        where = {"open": "WHERE closed IS NULL", "closed": "WHERE closed IS NOT NULL"}.get(
            status or "", ""
        )
        rows = self.ctx.all(
            f"SELECT * FROM cases {where} ORDER BY opened DESC, id LIMIT ? OFFSET ?",  # noqa: S608 -- fixed clauses
            (limit, offset),
        )
        return [case_view(r) for r in rows]

    def update(self, case_id: str, data: dict[str, Any]) -> dict[str, Any]:
        fields = check_fields(data, CASE_FIELDS, "case", nullable=CASE_NULLABLE)
        if not fields:
            raise InvalidInput("case: nothing to update")
        for key in CASE_REQUIRED | {"opened"}:
            if key in fields and fields[key] is None:
                raise InvalidInput(f"case.{key}: cannot be cleared")
        if "family_members" in fields and fields["family_members"] is None:
            # A count, never NULL in the table: clearing it means none, as erase_fields does.
            fields["family_members"] = 0
        with transaction(self.ctx.db):
            row = self.row(case_id)
            if row["closed"] is not None:
                raise ConflictError(f"case {case_id} is closed")
            encoded = self._encode(fields)
            sets = ", ".join(f"{k} = ?" for k in encoded)
            self.ctx.run(
                f"UPDATE cases SET {sets}, updated = ? WHERE id = ?",  # noqa: S608 -- column names come from CASE_FIELDS
                (*encoded.values(), self.ctx.now(), case_id),
            )
        return self.get(case_id)

    def close(self, case_id: str, reason: str, closed: str | None = None) -> dict[str, Any]:
        if reason not in codes.CLOSURE:
            raise InvalidInput("close.closure_reason: not a known code")
        date = closed or self.ctx.today()
        if not codes.is_code(date, DATE):
            raise InvalidInput("close.closed: not a date")
        with transaction(self.ctx.db):
            row = self.row(case_id)
            if row["closed"] is not None:
                raise ConflictError(f"case {case_id} is already closed")
            if date < row["opened"]:
                raise InvalidInput("close.closed: before the case was opened")
            self.ctx.run(
                "UPDATE cases SET closed = ?, closure_reason = ?, updated = ? WHERE id = ?",
                (date, reason, self.ctx.now(), case_id),
            )
        return self.get(case_id)

    def erase_fields(self, case_id: str, names: list[str]) -> None:
        """Clear client fields received by a referral that was withdrawn."""
        sets = []
        for name in names:
            if name in LIST_FIELDS:
                sets.append(f"{name} = '[]'")
            elif name == "family_members":
                sets.append("family_members = 0")
            elif name in CASE_FIELDS:
                sets.append(f"{name} = NULL")
        if sets:
            self.ctx.run(
                f"UPDATE cases SET {', '.join(sets)}, updated = ? WHERE id = ?",  # noqa: S608 -- names checked against CASE_FIELDS
                (self.ctx.now(), case_id),
            )

    # --------------------------------------------------------------- contacts

    def add_contact(self, case_id: str, data: dict[str, Any]) -> dict[str, Any]:
        fields = check_fields(
            data, CONTACT_FIELDS, "contact", required=frozenset({"date", "channel", "minutes"})
        )
        contact_id = new_id(self.ctx.deps.random)
        with transaction(self.ctx.db):
            self.row(case_id)
            self.ctx.run(
                "INSERT INTO contacts (id, case_id, date, channel, minutes, topics, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    contact_id,
                    case_id,
                    fields["date"],
                    fields["channel"],
                    fields["minutes"],
                    dumps(fields.get("topics", [])),
                    self.ctx.now(),
                ),
            )
        return self.contacts(case_id, contact_id)[0]

    def contacts(self, case_id: str, contact_id: str | None = None) -> list[dict[str, Any]]:
        self.row(case_id)
        rows = self.ctx.all(
            "SELECT id, case_id, date, channel, minutes, topics FROM contacts"
            " WHERE case_id = ? AND (? IS NULL OR id = ?) ORDER BY date, id",
            (case_id, contact_id, contact_id),
        )
        return [r | {"topics": loads_list(r["topics"])} for r in rows]

    # ------------------------------------------------------------- agreements

    def add_agreement(self, case_id: str, agreed: str, goals: Any) -> dict[str, Any]:
        if not codes.is_code(agreed, DATE):
            raise InvalidInput("agreement.agreed: not a date")
        checked = check_goals(goals)
        agreement_id = new_id(self.ctx.deps.random)
        now = self.ctx.now()
        with transaction(self.ctx.db):
            self.row(case_id)
            self.ctx.run(
                "INSERT INTO agreements (id, case_id, agreed, goals, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (agreement_id, case_id, agreed, dumps(checked), now, now),
            )
        return self.agreement(case_id, agreement_id)

    def update_agreement(self, case_id: str, agreement_id: str, goals: Any) -> dict[str, Any]:
        checked = check_goals(goals)
        with transaction(self.ctx.db):
            self.agreement(case_id, agreement_id)
            self.ctx.run(
                "UPDATE agreements SET goals = ?, updated = ? WHERE id = ?",
                (dumps(checked), self.ctx.now(), agreement_id),
            )
        return self.agreement(case_id, agreement_id)

    def agreement(self, case_id: str, agreement_id: str) -> dict[str, Any]:
        found = [a for a in self.agreements(case_id) if a["id"] == agreement_id]
        if not found:
            raise NotFound(f"agreement {agreement_id[:40]} not found")
        return found[0]

    def agreements(self, case_id: str) -> list[dict[str, Any]]:
        self.row(case_id)
        rows = self.ctx.all(
            "SELECT id, case_id, agreed, goals, updated FROM agreements"
            " WHERE case_id = ? ORDER BY agreed, id",
            (case_id,),
        )
        return [r | {"goals": loads_list(r["goals"]), "updated": iso(r["updated"])} for r in rows]
