"""SQL for `sent_log`: one row per message this office sealed, and its delivery status.

Every status change goes through `advance`, which follows the table in
node/domain/delivery.py; nothing else writes `sent_log.status`.
"""

from __future__ import annotations

from node.domain.delivery import Delivery, DeliveryEvent, next_delivery
from node.storage.context import StoreContext


def advance(
    ctx: StoreContext,
    msg_id: str,
    event: DeliveryEvent,
    *,
    resent_as: str | None = None,
    drop_payload: bool = False,
) -> Delivery | None:
    """Move one message's status by `event`, in the caller's transaction.

    Returns the new status, or None when the message is unknown or the event
    does not apply in its status (then nothing is written). `resent_as` names
    the message that replaces this one; `drop_payload` forgets the kept
    payload (it was only kept for a re-send).
    """
    row = ctx.one("SELECT status FROM sent_log WHERE msg_id = ?", (msg_id,))
    if row is None:
        return None
    new = next_delivery(Delivery(row["status"]), event)
    if new is None:
        return None
    ctx.run(
        "UPDATE sent_log SET status = ?, resent_as = COALESCE(?, resent_as),"
        " payload = CASE WHEN ? THEN NULL ELSE payload END WHERE msg_id = ?",
        (new, resent_as, drop_payload, msg_id),
    )
    return new


def failed_withdrawals(ctx: StoreContext, referral_id: str, withdraw_type: str) -> list[str]:
    """Ids of the withdrawals of `referral_id` that expired and could not be sealed again."""
    rows = ctx.all(
        "SELECT msg_id FROM sent_log WHERE referral_id = ? AND type = ? AND status = ?",
        (referral_id, withdraw_type, Delivery.FAILED),
    )
    return [r["msg_id"] for r in rows]


def count(ctx: StoreContext, status: Delivery) -> int:
    row = ctx.one("SELECT COUNT(*) AS n FROM sent_log WHERE status = ?", (status,))
    return int(row["n"]) if row else 0
