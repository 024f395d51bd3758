"""A client's consent to share fields with one office, and the consent gate.

A consent names one recipient office, the client fields it allows to share,
when it was given, until when it holds (`expires` is the last valid day) and
whether it was withdrawn. The gate (`choose`) refuses a referral unless one
valid consent for that recipient covers every field requested; its errors name
fields and ids, never values. Pure: the store reads the candidates, this
module decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from node.errors import ConsentRefused
from protocol.payloads import Consent


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


def choose(
    candidates: Sequence[ConsentRecord],
    *,
    case_id: str,
    recipient: str,
    fields: Sequence[str],
    consent_id: str | None,
    today: str,
) -> ConsentRecord:
    """The valid consent among a case's `candidates` covering `fields` for `recipient`
    (the one named `consent_id`, if given), or ConsentRefused saying why not."""
    matching = [
        c
        for c in candidates
        if c.recipient == recipient and (consent_id is None or c.consent_id == consent_id)
    ]
    if not matching:
        which = f"consent {consent_id}" if consent_id else "no consent"
        raise ConsentRefused(
            f"{which} for recipient {recipient} is recorded for case {case_id}"
            if consent_id is None
            else f"{which} does not exist for case {case_id} and recipient {recipient}"
        )
    valid = [c for c in matching if c.problem_at(today) is None]
    if not valid:
        problems = sorted({p for c in matching if (p := c.problem_at(today))})
        raise ConsentRefused(
            f"the consent for recipient {recipient} is not valid ({', '.join(problems)})"
        )
    best = max(valid, key=lambda c: (len(set(fields) & set(c.fields)), c.given, c.created))
    missing = [f for f in fields if f not in best.fields]
    if missing:
        raise ConsentRefused(
            f"the consent for recipient {recipient} does not cover field(s): " + ", ".join(missing)
        )
    return best
