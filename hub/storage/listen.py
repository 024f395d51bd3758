"""Hearing the other hub processes: PostgreSQL's LISTEN on one connection.

Several `mbe-hub serve` processes on one PostgreSQL database each hold the
push sockets of the nodes connected to them. What one process commits that a
node on another must hear of (mail queued for it, a new directory version,
which may revoke it) is sent with the commit: `PgDb.notify` runs
`pg_notify('mbe_hub', '<process> <kind> <item> ...')` inside the
transaction, and PostgreSQL delivers it to every listener when, and only
when, the transaction commits. Each process listens on a connection of its
own (`listen`) and hands each notice from another process to its sockets.

NOTIFY is a hint, like the push frames it leads to: a notice lost while the
connection was down costs a node only the wait until its next poll. Even so,
after every (re)connection `on_connect` runs, which tells every local socket
"mail" and checks the directory, so a failover does not leave nodes waiting.
A connection that goes quiet is checked with a query every `IDLE_CHECK`
seconds, so one cut without a reset is noticed too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import psycopg
import structlog

from .postgres import CHANNEL, CONNECT_TIMEOUT_S, redacted

IDLE_CHECK = 30.0
RETRY_FIRST, RETRY_MAX = 0.5, 10.0
log = structlog.get_logger()

OnNotice = Callable[[str, list[str]], Awaitable[None]]


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def parse(payload: str) -> tuple[str, str, list[str]] | None:
    """(process, kind, items) of a payload, None for one that is not the hub's."""
    parts = payload.split(" ")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1], [p for p in parts[2:] if p]


async def listen(
    url: str, tag: str, on_notice: OnNotice, on_connect: Callable[[], Awaitable[None]]
) -> None:
    """Listen until cancelled: each notice not sent under `tag` (this process's
    own, `PgPool.tag`) goes to `on_notice`."""
    delay = RETRY_FIRST
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(
                url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name="mbe-hub-listen",
            )
            async with conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                log.info("push.listening", database=redacted(url))
                delay = RETRY_FIRST
                await on_connect()
                while True:
                    notes = conn.notifies(timeout=IDLE_CHECK)
                    try:
                        async for note in notes:
                            found = parse(note.payload)
                            if found is None or found[0] == tag:
                                continue
                            await on_notice(found[1], found[2])
                    finally:
                        # At once, not when the loop finalizes the generator: it holds
                        # the connection's lock, which closing the connection waits for.
                        await notes.aclose()
                    await conn.execute("SELECT 1")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 -- the listener must outlive any failure; logged by type
            if _cancelling():
                # A driver that turned our cancellation into its own error.
                raise asyncio.CancelledError from None
            log.warning("push.listen_lost", error=type(exc).__name__, retry_in=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX)
