"""Building blocks for sync tests: offices with keys and stores, sealed envelopes, waiting."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from node.sync.ports import EnrollmentState, OutgoingMessage
from node.sync.settings import SyncSettings
from protocol.envelope import InnerMessage, seal
from protocol.ids import HUB_ID
from protocol.keys import PrivateKeys, PublicKeys
from protocol.payloads import ExpiryNotice, Payload, Receipt
from tests.sync.fakehub import FakeHub
from tests.sync.fakes import FakeStore


def fast_settings(**overrides: float | int | bool) -> SyncSettings:
    """Timings small enough for tests; poll stays long unless a test shortens it."""
    values: dict[str, float | int | bool] = {
        "poll_interval": 30.0,
        "min_backoff": 0.01,
        "max_backoff": 0.05,
        "request_timeout": 2.0,
    }
    values.update(overrides)
    return SyncSettings(**values)  # type: ignore[arg-type]


@dataclass
class Office:
    node_id: str
    keys: PrivateKeys
    store: FakeStore

    @property
    def public(self) -> PublicKeys:
        return self.keys.public


def enrolled_office(hub: FakeHub, url: str, node_id: str, n: int, store: FakeStore) -> Office:
    """An office the hub knows, with an enrollment state in its store (no code dance)."""
    from tests.sync.fakehub import fixed_keys

    keys = fixed_keys(n)
    hub.register(node_id, keys.public)
    store.enrollment = EnrollmentState(
        node_id=node_id,
        hub_urls=(url,),
        hub_keys=hub.keys.public,
        certificate=b"cert",
        enrolled_at=int(time.time()),
    )
    return Office(node_id, keys, store)


def sealed(
    sender_id: str,
    sender_keys: PrivateKeys,
    recipient_id: str,
    recipient: PublicKeys,
    *,
    msg_id: str | None = None,
    payload: Payload | None = None,
    created: int | None = None,
    ttl: int = 3600,
) -> tuple[str, bytes]:
    """(msg_id, envelope bytes) of a real sealed message, a receipt by default."""
    msg_id = msg_id or os.urandom(16).hex()
    created = int(time.time()) if created is None else created
    inner = InnerMessage(
        msg_id=msg_id,
        sender=sender_id,
        recipient=recipient_id,
        created=created,
        expires=created + ttl,
        payload=payload or Receipt(of_msg_id="ab" * 16, received=created),
    )
    env = seal(inner, sender_keys, recipient, ephemeral_secret=os.urandom(32))
    return msg_id, env.encode()


def outgoing(sender: Office, recipient: Office) -> OutgoingMessage:
    msg_id, data = sealed(sender.node_id, sender.keys, recipient.node_id, recipient.public)
    return OutgoingMessage(msg_id, recipient.node_id, data, int(time.time()) + 3600)


def expiry_notice(hub: FakeHub, office: Office) -> tuple[str, bytes]:
    now = int(time.time())
    notice = ExpiryNotice(of_msg_id="cd" * 16, recipient="someone-else", expired=now)
    return sealed(HUB_ID, hub.keys, office.node_id, office.public, payload=notice)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> float:
    """Wait until `check()` holds; return the seconds it took (fails the test on timeout)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not check():
        if loop.time() - start > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)
    return loop.time() - start
