"""Sealing a report to the hub: signed by the node key, encrypted to the hub's key."""

from __future__ import annotations

from dataclasses import dataclass

from node.clock import Deps, new_message_id
from node.stats.errors import ReportTooLarge
from node.sync.ports import EnrollmentState
from protocol.envelope import InnerMessage, seal
from protocol.errors import MalformedError, TooLargeError
from protocol.ids import HUB_ID
from protocol.keys import PrivateKeys
from protocol.payloads import StatsReport


@dataclass(frozen=True)
class Sealed:
    msg_id: str
    envelope: bytes
    expires: int


def seal_report(
    report: StatsReport,
    *,
    keys: PrivateKeys,
    enrollment: EnrollmentState,
    deps: Deps,
    ttl: int,
) -> Sealed:
    """The envelope bytes for POST /v1/stats (recipient `hub`)."""
    now = deps.clock.now()
    inner = InnerMessage(
        msg_id=new_message_id(deps.random, now),
        sender=enrollment.node_id,
        recipient=HUB_ID,
        created=now,
        expires=now + ttl,
        payload=report,
    )
    try:
        envelope = seal(
            inner, keys, enrollment.hub_keys, ephemeral_secret=deps.random.token_bytes(32)
        )
    except (TooLargeError, MalformedError) as exc:
        # seal() decodes our own payload first, so a report over the cell limit lands here too.
        raise ReportTooLarge(
            f"report for {report.period} does not fit one message: {exc}"
        ) from None
    return Sealed(msg_id=inner.msg_id, envelope=envelope.encode(), expires=inner.expires)
