"""Publishing the directory versions that enrollments ask for, after the answer.

Every directory version lists every site and is signed and stored whole, so
making one costs time in proportion to all sites (about 15 ms at 2 000 sites
on the development machine). Made inside each enrollment, that time was paid
by every enrollment, and enrolling site 2 000 took six times as long as site
100 (issue 11). Instead an enrollment commits, answers with the newest
version, and tells the `DirectoryPublisher` of this process its node id. The
publisher publishes one version for all the node ids it was told, at once
when the last version it published is `directory.publish_interval` seconds
old, else when it will be; then it announces the version to connected nodes.
So a single enrollment is listed within milliseconds, and a burst of them (a
region rolling out) makes one version per interval instead of one each, for
the hub and for every node that fetches it.

What a stopped process still owed is published by the next maintenance pass
of any hub process, which compares every site with the newest version
(`hub.maintenance`), and at start (`hub.app.publisher_ctx`). A failed
publication is tried again after `RETRY_S`, keeping its node ids.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection

import structlog

from hub import directory
from hub.push import DirectoryAnnouncer
from hub.settings import HubSettings
from hub.storage.db import DbWorker, write
from hub.storage.engine import Db
from protocol.keys import PrivateKeys
from support.clock import Clock

log = structlog.get_logger()

# Seconds before a publication that failed (database unreachable, disk full) is tried again.
RETRY_S = 5.0


def publish_due(
    db: Db, keys: PrivateKeys, settings: HubSettings, now: int, changed: Collection[str] | None
) -> int | None:
    """One durable transaction: the next version if the sites `changed` (all sites
    if None) are not listed as they are now; its number, or None if nothing changed."""
    with write(db):
        published = directory.publish_changes(db, keys, settings, now, changed=changed)
    return None if published is None else published.version


class DirectoryPublisher:
    """Publishes, in the background, the versions this process's enrollments ask for."""

    def __init__(
        self,
        db: DbWorker,
        keys: PrivateKeys,
        settings: HubSettings,
        clock: Clock,
        announcer: DirectoryAnnouncer,
    ) -> None:
        self._db = db
        self._keys = keys
        self._settings = settings
        self._clock = clock
        self._announcer = announcer
        self._due: set[str] = set()
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._last = -float("inf")  # time.monotonic() of the last publication
        self._failed = False  # whether the last publication failed

    def due(self, node_id: str) -> None:
        """Ask for a version listing `node_id` as it is now in the sites table."""
        self._due.add(node_id)
        self._wake.set()

    @property
    def pending(self) -> int:
        """Node ids waiting for their version."""
        return len(self._due)

    async def run(self) -> None:
        """Publish whenever asked, at most once per `directory.publish_interval`."""
        while True:
            await self._wake.wait()
            wait = self._last + self._settings.directory.publish_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._wake.clear()
            await self.flush()
            if self._failed:  # the node ids are kept for the next try
                await asyncio.sleep(RETRY_S)
                self._wake.set()

    async def flush(self) -> int | None:
        """Publish what is due now; the version, or None if none was made or it failed.

        One at a time: a flush called while another runs waits for it, so once
        it returns, everything asked for before the call is published (or failed).
        """
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int | None:
        changed, self._due = self._due, set()
        if not changed:
            return None
        try:
            version = await self._db.run(
                publish_due, self._keys, self._settings, self._clock.now(), changed
            )
        except asyncio.CancelledError:
            self._due |= changed
            raise
        except Exception as exc:  # noqa: BLE001 -- a background boundary: log the type, keep the ids, retry
            self._due |= changed
            self._failed = True
            log.warning("directory.publish_failed", error=type(exc).__name__, sites=len(changed))
            return None
        self._failed = False
        self._last = time.monotonic()
        if version is not None:
            log.info("directory.published", version=version, sites=len(changed))
            try:
                await self._announcer.check()
            except Exception as exc:  # noqa: BLE001 -- the announcer's own watch announces it within a second
                log.warning("directory.announce_failed", error=type(exc).__name__)
        return version
