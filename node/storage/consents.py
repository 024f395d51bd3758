"""Consents and the consent gate every outgoing referral passes.

A consent names one recipient office, the client fields it allows to share,
when it was given, until when it holds (`expires` is the last valid day) and
whether it was withdrawn. The gate refuses a referral unless one valid consent
for that recipient covers every field requested; its errors name fields and
ids, never values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node.clock import new_id
from node.errors import ConflictError, ConsentRefused, InvalidInput, NotFound
from node.storage.context import StoreContext, dumps, iso, loads_list
from node.storage.db import transaction
from node.storage.validation import check_client_field_names, check_node_id, code, text
from protocol import codes
from protocol.payloads import DATE, Consent


@dataclass(frozen=True)
class ConsentRecord:
    consent_id: str
    case_id: str
    purpose: str
    recipient: str
    fields: tuple[str, ...]
    given: str
    expires: str | None
    withdrawn: str | None
    form: str
    legal_regime: str
    created: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ConsentRecord:
        return cls(
            consent_id=row["id"],
            case_id=row["case_id"],
            purpose=row["purpose"],
            recipient=row["recipient"],
            fields=tuple(loads_list(row["fields"])),
            given=row["given"],
            expires=row["expires"],
            withdrawn=row["withdrawn"],
            form=row["form"],
            legal_regime=row["legal_regime"],
            created=row["created"],
        )

    def problem_at(self, today: str) -> str | None:
        """Why this consent does not hold on `today`, or None when it does."""
        if self.withdrawn is not None:
            return "withdrawn"
        if self.given > today:
            return "not yet given"
        if self.expires is not None and self.expires < today:
            return "expired"
        return None

    def to_payload(self) -> Consent:
        return Consent(
            consent_id=self.consent_id,
            given=self.given,
            form=self.form,
            legal_regime=self.legal_regime,
            fields=self.fields,
            expires=self.expires,
        )

    def view(self, today: str) -> dict[str, Any]:
        return {
            "id": self.consent_id,
            "case_id": self.case_id,
            "purpose": self.purpose,
            "recipient": self.recipient,
            "fields": list(self.fields),
            "given": self.given,
            "expires": self.expires,
            "withdrawn": self.withdrawn,
            "form": self.form,
            "legal_regime": self.legal_regime,
            "valid": self.problem_at(today) is None,
            "created": iso(self.created),
        }


class Consents:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    def record(self, case_id: str, data: dict[str, Any]) -> ConsentRecord:
        allowed = {"purpose", "recipient", "fields", "given", "expires", "form", "legal_regime"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise InvalidInput(f"consent: unknown field {unknown[0][:40]}")
        missing = sorted({"purpose", "recipient", "fields", "form", "legal_regime"} - set(data))
        if missing:
            raise InvalidInput(f"consent: missing field {missing[0]}")
        if not text(500)(data["purpose"]):
            raise InvalidInput("consent.purpose: invalid value")
        recipient = check_node_id(data["recipient"], "consent.recipient")
        fields = check_client_field_names(data["fields"], "consent.fields")
        given = data.get("given") or self.ctx.today()
        expires = data.get("expires")
        for key, value in (("given", given), ("expires", expires)):
            if value is not None and not code(DATE)(value):
                raise InvalidInput(f"consent.{key}: not a date")
        if expires is not None and expires < given:
            raise InvalidInput("consent.expires: before the consent was given")
        if data["form"] not in codes.CONSENT_FORM:
            raise InvalidInput("consent.form: not a known code")
        if data["legal_regime"] not in codes.LEGAL_REGIME:
            raise InvalidInput("consent.legal_regime: not a known code")
        consent_id = new_id(self.ctx.deps.random)
        with transaction(self.ctx.db):
            if self.ctx.one("SELECT 1 FROM cases WHERE id = ?", (case_id,)) is None:
                raise NotFound(f"case {case_id[:40]} not found")
            self.ctx.run(
                "INSERT INTO consents (id, case_id, purpose, recipient, fields, given, expires,"
                " withdrawn, form, legal_regime, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                (
                    consent_id,
                    case_id,
                    data["purpose"],
                    recipient,
                    dumps(fields),
                    given,
                    expires,
                    data["form"],
                    data["legal_regime"],
                    self.ctx.now(),
                ),
            )
        return self.get(consent_id)

    def get(self, consent_id: str) -> ConsentRecord:
        row = self.ctx.one("SELECT * FROM consents WHERE id = ?", (consent_id,))
        if row is None:
            raise NotFound(f"consent {consent_id[:40]} not found")
        return ConsentRecord.from_row(row)

    def for_case(self, case_id: str) -> list[ConsentRecord]:
        rows = self.ctx.all(
            "SELECT * FROM consents WHERE case_id = ? ORDER BY given, created, id", (case_id,)
        )
        return [ConsentRecord.from_row(r) for r in rows]

    def withdraw(self, consent_id: str, date: str | None = None) -> ConsentRecord:
        when = date or self.ctx.today()
        if not code(DATE)(when):
            raise InvalidInput("withdraw.date: not a date")
        with transaction(self.ctx.db):
            consent = self.get(consent_id)
            if consent.withdrawn is not None:
                raise ConflictError(f"consent {consent_id} is already withdrawn")
            self.ctx.run("UPDATE consents SET withdrawn = ? WHERE id = ?", (when, consent_id))
        return self.get(consent_id)

    def gate(
        self,
        case_id: str,
        recipient: str,
        fields: list[str],
        *,
        consent_id: str | None = None,
    ) -> ConsentRecord:
        """The valid consent covering `fields` for `recipient`, or ConsentRefused."""
        today = self.ctx.today()
        candidates = [
            c
            for c in self.for_case(case_id)
            if c.recipient == recipient and (consent_id is None or c.consent_id == consent_id)
        ]
        if not candidates:
            which = f"consent {consent_id}" if consent_id else "no consent"
            raise ConsentRefused(
                f"{which} for recipient {recipient} is recorded for case {case_id}"
                if consent_id is None
                else f"{which} does not exist for case {case_id} and recipient {recipient}"
            )
        valid = [c for c in candidates if c.problem_at(today) is None]
        if not valid:
            problems = sorted({p for c in candidates if (p := c.problem_at(today))})
            raise ConsentRefused(
                f"the consent for recipient {recipient} is not valid ({', '.join(problems)})"
            )
        best = max(valid, key=lambda c: (len(set(fields) & set(c.fields)), c.given, c.created))
        missing = [f for f in fields if f not in best.fields]
        if missing:
            raise ConsentRefused(
                f"the consent for recipient {recipient} does not cover field(s): "
                + ", ".join(missing)
            )
        return best
