"""The signed deletion receipt an office returns for an erasure notice.

When a client's case is erased, every office that received the client's data
by referral gets a `referral.erase` message (protocol/payloads.py) and answers
with an `erasure.receipt` carrying this document, signed with its own Ed25519
key. The sending office keeps the document: it shows, to the client or a
supervisory authority, what the other office says it erased and what it keeps
under its own responsibility (Art. 19 GDPR), and only that office's key can
have made it. The signature is a hub-independent signed document
(protocol/documents.py) of its own kind, so it can never pass for another one.

Body: the referral id, the signing office and the office it answers, the
field names erased, what it keeps ("case": its own counselling case opened
from the accepted referral, which its counsellor settles with the client),
whether that case was flagged, and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocol import codes
from protocol.documents import sign_document, verify_document
from protocol.encoding import as_map, exact_keys, field_int, field_str, field_str_list
from protocol.errors import MalformedError
from protocol.ids import MESSAGE_ID, NODE_ID
from protocol.keys import PrivateKeys, PublicKeys
from protocol.payloads import CLIENT_FIELDS, MAX_RECEIPT_DOC


@dataclass(frozen=True)
class DeletionReceipt:
    KIND = "deletion-receipt"
    referral_id: str
    office: str  # the office that erased and signs
    to: str  # the office that sent the erasure notice
    erased: tuple[str, ...]  # client field names erased
    kept: tuple[str, ...]  # what the office keeps under its own responsibility
    flagged: bool  # its own case was flagged for its counsellor
    at: int

    def body(self) -> dict[str, Any]:
        return {
            "referral": self.referral_id,
            "office": self.office,
            "to": self.to,
            "erased": list(self.erased),
            "kept": list(self.kept),
            "flagged": self.flagged,
            "at": self.at,
        }

    def sign(self, keys: PrivateKeys) -> bytes:
        return sign_document(self.KIND, self.body(), keys)

    @classmethod
    def verify(cls, data: bytes, signer: PublicKeys) -> DeletionReceipt:
        """Check the signature and the body; a ProtocolError otherwise."""
        w = cls.KIND
        m = as_map(verify_document(data, w, signer, MAX_RECEIPT_DOC), w)
        exact_keys(m, {"referral", "office", "to", "erased", "kept", "flagged", "at"}, set(), w)
        flagged = m["flagged"]
        if not isinstance(flagged, bool):
            raise MalformedError(f"{w}.flagged: expected true or false")
        return cls(
            referral_id=field_str(m, "referral", w, pattern=MESSAGE_ID),
            office=field_str(m, "office", w, pattern=NODE_ID),
            to=field_str(m, "to", w, pattern=NODE_ID),
            erased=field_str_list(m, "erased", w, allowed=frozenset(CLIENT_FIELDS)),
            kept=field_str_list(m, "kept", w, allowed=codes.KEPT_ITEM),
            flagged=flagged,
            at=field_int(m, "at", w),
        )
