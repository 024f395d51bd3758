"""The delivery status of sent messages (node/domain/delivery.py) and its one writer."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from node.domain.delivery import TABLE, Delivery, DeliveryEvent, may_expire, next_delivery

LEGAL: dict[tuple[Delivery, DeliveryEvent], Delivery] = {
    (Delivery.QUEUED, DeliveryEvent.HUB_ACCEPTED): Delivery.ACCEPTED,
    (Delivery.QUEUED, DeliveryEvent.HUB_REJECTED): Delivery.REJECTED,
    (Delivery.FAILED, DeliveryEvent.REPLACED): Delivery.RESENT,
    **{
        (s, e): new
        for s in (Delivery.QUEUED, Delivery.ACCEPTED, Delivery.DELIVERED, Delivery.REJECTED)
        for e, new in (
            (DeliveryEvent.EXPIRED, Delivery.EXPIRED),
            (DeliveryEvent.RESENT, Delivery.RESENT),
            (DeliveryEvent.RESEND_FAILED, Delivery.FAILED),
        )
    },
    **{(s, DeliveryEvent.RECEIPT): Delivery.DELIVERED for s in Delivery if s != Delivery.REJECTED},
}


def test_table_is_exactly_the_documented_machine() -> None:
    assert dict(TABLE) == LEGAL


def test_events_outside_the_table_change_nothing() -> None:
    ignored = 0
    for status, event in itertools.product(Delivery, DeliveryEvent):
        if (status, event) not in LEGAL:
            assert next_delivery(status, event) is None
            ignored += 1
    assert ignored > 20


def test_an_expiry_is_handled_once() -> None:
    """A second expiry notice (or one after the local expiry) finds nothing to do."""
    assert may_expire(Delivery.ACCEPTED)
    for done in (Delivery.EXPIRED, Delivery.RESENT, Delivery.FAILED):
        assert not may_expire(done)


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        TABLE[(Delivery.QUEUED, DeliveryEvent.RECEIPT)] = Delivery.FAILED  # type: ignore[index]


def test_only_the_sent_log_module_writes_the_status() -> None:
    """Every status change goes through node/storage/sent_log.advance (and its table)."""
    root = Path(__file__).resolve().parents[2] / "node"
    writers = [
        str(f.relative_to(root))
        for f in root.rglob("*.py")
        if "sent_log SET status" in f.read_text("utf-8")
    ]
    assert writers == ["storage/sent_log.py"]
