"""What an app may ask for when it refers a client, and which client values go out.

`parse_request` checks the body of POST /referrals/outgoing beyond the API
spec (the store is also fed by tests and tools); `client_values` picks the
consented fields' values from the case. Errors name fields, never values.
Pure: the store reads the case and runs the consent gate around these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from node.domain.validation import LIST_FIELDS, check_client_field_names, check_node_id
from node.errors import InvalidInput
from protocol import codes
from protocol.payloads import CLIENT_FIELDS

_ALLOWED = frozenset({"case_id", "recipient", "target_type", "fields", "consent_id", "note"})
_REQUIRED = frozenset({"case_id", "recipient", "target_type", "fields"})


@dataclass(frozen=True)
class ReferralRequest:
    case_id: str
    recipient: str
    target_type: str
    # The client fields to send; "note" is added when a note is sent.
    fields: tuple[str, ...]
    note: str | None
    consent_id: str | None


def parse_request(data: Mapping[str, Any]) -> ReferralRequest:
    unknown = sorted(set(data) - _ALLOWED)
    if unknown:
        raise InvalidInput(f"referral: unknown field {unknown[0][:40]}")
    missing = sorted(_REQUIRED - set(data))
    if missing:
        raise InvalidInput(f"referral: missing field {missing[0]}")
    recipient = check_node_id(data["recipient"], "referral.recipient")
    if data["target_type"] not in codes.REFERRAL_TARGET:
        raise InvalidInput("referral.target_type: not a known code")
    fields = check_client_field_names(data["fields"], "referral.fields")
    note = data.get("note")
    if note is not None and not CLIENT_FIELDS["note"](note):
        raise InvalidInput("referral.note: invalid value")
    if note is not None and "note" not in fields:
        fields.append("note")
    consent_id = data.get("consent_id")
    return ReferralRequest(
        case_id=str(data["case_id"]),
        recipient=recipient,
        target_type=str(data["target_type"]),
        fields=tuple(fields),
        note=note,
        consent_id=None if consent_id is None else str(consent_id),
    )


def client_values(
    case: Mapping[str, Any], fields: Sequence[str], note: str | None
) -> dict[str, Any]:
    """The values of `fields` from the case row (the note from the request); every
    field must have a value, or the referral would promise what it cannot send."""
    client: dict[str, Any] = {}
    empty = []
    for name in fields:
        value = note if name == "note" and note is not None else case.get(name)
        if name in LIST_FIELDS:
            value = _list(value)
        if value is None or value == []:
            empty.append(name)
        else:
            client[name] = value
    if empty:
        raise InvalidInput(f"the case has no value for field(s): {', '.join(empty)}")
    return client


def _list(text: Any) -> list[Any]:
    """A list column as stored (JSON text), or [] when empty."""
    if not text:
        return []
    value = json.loads(text)
    return value if isinstance(value, list) else []
