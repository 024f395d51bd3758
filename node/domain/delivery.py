"""How far a message this office sent has got: `sent_log.status` as a state machine.

A second state machine beside the referral's own (referral_states.py): one
row per sealed message, written by the outbox (the hub took it or refused
it), by incoming receipts, and by redelivery (it expired undelivered and was
sealed again, or could not be). Every change goes through `advance`, which
asks this table; an event that does not apply in the current state changes
nothing (a duplicate receipt, a second expiry notice).

    queued --hub_accepted--> accepted
    queued --hub_rejected--> rejected
    queued, accepted, delivered, rejected --expired--> expired
                                          --resent--> resent
                                          --resend_failed--> failed
    failed --replaced--> resent        (a new withdrawal replaces one that failed)
    every state but rejected --receipt--> delivered

A receipt is proof of delivery whatever the sender believed: the hub may have
delivered a message whose upload answer was lost (queued), or one this node
had given up on. A refused message never reached anyone.

Pure: no storage, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final


class Delivery(enum.StrEnum):
    QUEUED = "queued"
    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    EXPIRED = "expired"
    RESENT = "resent"
    FAILED = "failed"


class DeliveryEvent(enum.StrEnum):
    HUB_ACCEPTED = "hub_accepted"
    HUB_REJECTED = "hub_rejected"
    RECEIPT = "receipt"
    EXPIRED = "expired"
    RESENT = "resent"
    RESEND_FAILED = "resend_failed"
    REPLACED = "replaced"


# States in which the message may still expire undelivered.
_UNDONE: Final = (Delivery.QUEUED, Delivery.ACCEPTED, Delivery.DELIVERED, Delivery.REJECTED)


def _build() -> Mapping[tuple[Delivery, DeliveryEvent], Delivery]:
    table: dict[tuple[Delivery, DeliveryEvent], Delivery] = {
        (Delivery.QUEUED, DeliveryEvent.HUB_ACCEPTED): Delivery.ACCEPTED,
        (Delivery.QUEUED, DeliveryEvent.HUB_REJECTED): Delivery.REJECTED,
        (Delivery.FAILED, DeliveryEvent.REPLACED): Delivery.RESENT,
    }
    for state in _UNDONE:
        table[(state, DeliveryEvent.EXPIRED)] = Delivery.EXPIRED
        table[(state, DeliveryEvent.RESENT)] = Delivery.RESENT
        table[(state, DeliveryEvent.RESEND_FAILED)] = Delivery.FAILED
    for state in Delivery:
        if state is not Delivery.REJECTED:
            table[(state, DeliveryEvent.RECEIPT)] = Delivery.DELIVERED
    return MappingProxyType(table)


TABLE: Final = _build()


def next_delivery(status: Delivery, event: DeliveryEvent) -> Delivery | None:
    """The status after `event`, or None when the event does not apply (nothing changes)."""
    return TABLE.get((status, event))


def may_expire(status: Delivery) -> bool:
    """Whether an expiry of this message still needs handling (not told twice)."""
    return (status, DeliveryEvent.EXPIRED) in TABLE
