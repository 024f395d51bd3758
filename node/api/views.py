"""How the local API shows referrals and consents: presentation only, no SQL, no rules.

The store hands out `Referral` values, their histories and the messages sealed
about them; these functions shape them into the JSON of node/api/openapi.yaml.
A list is shown with three queries in all (the referrals, their histories,
their messages), not two more per referral.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from node.domain.consent import ConsentRecord
from node.domain.delivery import Delivery
from node.domain.referral_states import IN, OUT
from node.storage.context import iso
from node.storage.referrals import Referral
from node.storage.store import NodeStore
from protocol.payloads import ReferralOffer, ReferralWithdraw

# Offers and withdrawals are the sending office's messages, the rest the receiver's.
_SENDER_TYPES = frozenset({ReferralOffer.TYPE, ReferralWithdraw.TYPE})


def consent_view(consent: ConsentRecord, today: str) -> dict[str, Any]:
    return {
        "id": consent.consent_id,
        "case_id": consent.case_id,
        "purpose": consent.purpose,
        "recipient": consent.recipient,
        "fields": list(consent.fields),
        "given": consent.given,
        "expires": consent.expires,
        "withdrawn": consent.withdrawn,
        "form": consent.form,
        "legal_regime": consent.legal_regime,
        "valid": consent.problem_at(today) is None,
        "created": iso(consent.created),
    }


def delivery(ref: Referral, sent: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest message this office sent about `ref` and how far it got."""
    mine = [m for m in sent if (m["type"] in _SENDER_TYPES) == (ref.direction == OUT)]
    if not mine:
        return None
    resent = sum(m["status"] == Delivery.RESENT for m in mine)
    return {"type": mine[-1]["type"], "status": mine[-1]["status"], "resent": resent}


def referral_view(
    ref: Referral, history: list[dict[str, Any]], sent: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": ref.referral_id,
        "direction": "outgoing" if ref.direction == OUT else "incoming",
        "peer": ref.peer,
        "case_id": ref.case_id,
        "target_type": ref.target_type,
        "consent_id": ref.consent_id,
        "fields": list(ref.fields),
        "state": ref.state,
        "reason": ref.reason,
        "created": iso(ref.created),
        "updated": iso(ref.updated),
        "history": history,
        "delivery": delivery(ref, sent),
    }
    if ref.direction == IN:
        out["client"] = ref.client
    else:
        out["note"] = ref.note
        out["reply_note"] = ref.reply_note
    return out


def referral_views(store: NodeStore, refs: Sequence[Referral]) -> list[dict[str, Any]]:
    """The views of referrals of one direction (as one list call returns them)."""
    if not refs:
        return []
    ids = [r.referral_id for r in refs]
    histories = store.referrals.histories(refs[0].direction, ids)
    sent = store.referrals.sent_messages(ids)
    return [referral_view(r, histories[r.referral_id], sent[r.referral_id]) for r in refs]


def view_of(store: NodeStore, ref: Referral) -> dict[str, Any]:
    """The view of one referral."""
    (view,) = referral_views(store, [ref])
    return view
