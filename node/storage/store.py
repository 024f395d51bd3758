"""`NodeStore`: the node database with its parts, opened once per process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlite_utils

from node.clock import Deps
from node.storage.access import Access
from node.storage.cases import Cases
from node.storage.consents import Consents
from node.storage.context import StoreContext
from node.storage.db import open_database
from node.storage.health import SyncHealth, read_health
from node.storage.lifecycle import ReferralLifecycle
from node.storage.network import Network
from node.storage.referrals import Referrals
from node.storage.sync_store import SqliteSyncStore
from protocol.keys import PrivateKeys


class NodeStore:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx
        self.cases = Cases(ctx)
        self.consents = Consents(ctx)
        self.network = Network(ctx)
        self.referrals = Referrals(ctx, self.cases, self.consents, self.network)
        self.lifecycle = ReferralLifecycle(ctx, self.referrals)
        self.access = Access(ctx)
        self.sync = SqliteSyncStore(ctx, self.network, self.referrals)

    @classmethod
    def open(
        cls, path: Path | str, keys: PrivateKeys, deps: Deps, *, message_ttl: int
    ) -> NodeStore:
        db = open_database(path)
        return cls(StoreContext(db=db, keys=keys, deps=deps, message_ttl=message_ttl))

    @property
    def db(self) -> sqlite_utils.Database:
        return self.ctx.db

    def close(self) -> None:
        self.ctx.db.conn.close()

    def health(self) -> SyncHealth:
        """The figures of `mbe-node status`, GET /api/v1/status and the status page."""
        return read_health(self.ctx, self.network)

    def status(self) -> dict[str, Any]:
        """Sync health as GET /api/v1/status answers it."""
        return self.health().to_map()
