"""SQL for consents: record, read, withdraw; the gate's rule is node/domain/consent.py."""

from __future__ import annotations

from typing import Any

from node.clock import new_id
from node.domain.consent import ConsentRecord, choose
from node.domain.validation import check_client_field_names, check_node_id, code, text
from node.errors import ConflictError, InvalidInput, NotEnrolled, NotFound
from node.storage.context import StoreContext, dumps, loads_list
from node.storage.db import transaction
from node.storage.network import Network
from protocol import codes
from protocol.payloads import DATE


def consent_from_row(row: dict[str, Any]) -> ConsentRecord:
    return ConsentRecord(
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


# How many known offices a refused consent's message lists.
OFFICES_LISTED = 20


class Consents:
    def __init__(self, ctx: StoreContext, network: Network | None = None) -> None:
        self.ctx = ctx
        self.network = network

    def _check_recipient(self, recipient: str) -> None:
        """A consent names an active office of the directory, when the node holds one
        (before enrollment the referral's own check comes later); the refusal
        lists the offices that exist."""
        if self.network is None:
            return
        try:
            directory = self.network.directory()
        except NotEnrolled:
            return
        office = directory.office(recipient)
        if office is not None and office.status == "active":
            return
        known = sorted(o.node_id for o in directory.offices if o.status == "active")
        listed = ", ".join(known[:OFFICES_LISTED])
        more = len(known) - OFFICES_LISTED
        if more > 0:
            listed += f" and {more} more"
        raise InvalidInput(
            f"consent.recipient: {recipient} is not an active office in the directory;"
            f" known offices: {listed or 'none'} (GET /api/v1/directory)"
        )

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
        if given > self.ctx.today():
            raise InvalidInput(
                "consent.given: lies in the future; a consent is recorded once given"
            )
        if data["form"] not in codes.CONSENT_FORM:
            raise InvalidInput("consent.form: not a known code")
        if data["legal_regime"] not in codes.LEGAL_REGIME:
            raise InvalidInput("consent.legal_regime: not a known code")
        self._check_recipient(recipient)
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
        return consent_from_row(row)

    def for_case(self, case_id: str) -> list[ConsentRecord]:
        rows = self.ctx.all(
            "SELECT * FROM consents WHERE case_id = ? ORDER BY given, created, id", (case_id,)
        )
        return [consent_from_row(r) for r in rows]

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
        """The valid consent covering `fields` for `recipient` (node/domain/consent.py)."""
        return choose(
            self.for_case(case_id),
            case_id=case_id,
            recipient=recipient,
            fields=fields,
            consent_id=consent_id,
            today=self.ctx.today(),
        )
