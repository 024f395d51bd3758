"""`NodeStore`: the node database with its parts, opened once per process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlite_utils

from node.clock import Deps
from node.storage.access import Access
from node.storage.cases import Cases
from node.storage.consents import Consents
from node.storage.context import StoreContext, iso
from node.storage.db import open_database
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

    def status(self) -> dict[str, Any]:
        """Sync health for `mbe-node status` and GET /api/v1/status."""
        enrollment = self.network.load_enrollment()
        outbox = self.ctx.one(
            "SELECT COUNT(*) AS n, MIN(created) AS oldest FROM outbox WHERE rejected IS NULL"
        ) or {"n": 0, "oldest": None}
        rejected = self.ctx.one("SELECT COUNT(*) AS n FROM outbox WHERE rejected IS NOT NULL")
        inbox = self.ctx.one(
            "SELECT COUNT(*) AS n FROM referrals WHERE direction = 'in' AND state = 'received'"
        )
        refused = self.ctx.one("SELECT COUNT(*) AS n FROM refused")
        state = {r["key"]: r["value"] for r in self.ctx.all("SELECT key, value FROM sync_state")}
        last_sync = state.get("last_sync")
        return {
            "enrolled": enrollment is not None,
            "node_id": enrollment.node_id if enrollment else None,
            "hub_url": enrollment.hub_url if enrollment else None,
            "enrolled_at": iso(enrollment.enrolled_at) if enrollment else None,
            "directory_version": self.network.directory_version(),
            "outbox_depth": int(outbox["n"]),
            "outbox_rejected": int(rejected["n"]) if rejected else 0,
            "oldest_unsent": iso(outbox["oldest"]),
            "inbox_depth": int(inbox["n"]) if inbox else 0,
            "refused_messages": int(refused["n"]) if refused else 0,
            "last_sync": iso(int(float(last_sync))) if last_sync else None,
            "sync_state": state,
        }
