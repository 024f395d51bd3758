"""`NodeStore`: the node database with its parts, opened once per process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlite_utils

from node.clock import Deps
from node.domain.retention import DEFAULT_YEARS
from node.storage.access import Access
from node.storage.cases import Cases
from node.storage.consents import Consents
from node.storage.context import StoreContext
from node.storage.db import open_database
from node.storage.erasure import Erasure
from node.storage.health import SyncHealth, read_health
from node.storage.idempotency import IdempotencyKeys
from node.storage.lifecycle import ReferralLifecycle
from node.storage.network import Network
from node.storage.referrals import Referrals
from node.storage.retention import Retention
from node.storage.sync_store import SqliteSyncStore
from node.storage.thread import DbThread
from protocol.keys import PrivateKeys

P = ParamSpec("P")
T = TypeVar("T")


class NodeStore:
    """The node database and its parts.

    Opened with `open` it is used directly, on the caller's thread (the CLI,
    tests). Opened with `open_threaded` (the server) the connection lives on a
    `DbThread` and every use goes through `await store.run(...)`.
    """

    def __init__(self, ctx: StoreContext, thread: DbThread | None = None) -> None:
        self.ctx = ctx
        self._thread = thread
        self.cases = Cases(ctx)
        self.network = Network(ctx)
        self.consents = Consents(ctx, self.network)
        self.referrals = Referrals(ctx, self.cases, self.consents, self.network)
        self.lifecycle = ReferralLifecycle(ctx, self.referrals)
        self.access = Access(ctx)
        self.idempotency = IdempotencyKeys(ctx)
        self.erasure = Erasure(ctx, self.referrals, self.access, self.idempotency)
        self.retention = Retention(ctx, self.cases)
        self.sync = SqliteSyncStore(ctx, self.network, self.referrals, self.erasure)

    @classmethod
    def open(
        cls,
        path: Path | str,
        keys: PrivateKeys,
        deps: Deps,
        *,
        message_ttl: int,
        answer_within_days: int = 14,
    ) -> NodeStore:
        db = open_database(path)
        ctx = StoreContext(
            db=db,
            keys=keys,
            deps=deps,
            message_ttl=message_ttl,
            answer_within_days=answer_within_days,
        )
        store = cls(ctx)
        # Audit entries from before the hash chain (migration 0008): chained once.
        store.access.chain.upgrade()
        return store

    @classmethod
    def open_threaded(
        cls,
        path: Path | str,
        keys: PrivateKeys,
        deps: Deps,
        *,
        message_ttl: int,
        answer_within_days: int = 14,
    ) -> NodeStore:
        """Open the store with its connection on a new database thread (the server)."""
        thread = DbThread()
        try:
            store = thread.call(
                cls.open,
                path,
                keys,
                deps,
                message_ttl=message_ttl,
                answer_within_days=answer_within_days,
            )
        except BaseException:
            thread.shutdown()
            raise
        store._thread = thread
        return store

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` where the connection lives: on the database thread if there is
        one, else right here."""
        if self._thread is None:
            return fn(*args, **kwargs)
        return await self._thread.run(fn, *args, **kwargs)

    @property
    def db(self) -> sqlite_utils.Database:
        return self.ctx.db

    def close(self) -> None:
        if self._thread is None:
            self.ctx.db.conn.close()
            return
        try:
            self._thread.call(self.ctx.db.conn.close)
        finally:
            self._thread.shutdown()

    def health(self, retention_years: int = DEFAULT_YEARS) -> SyncHealth:
        """The figures of `mbe-node status`, GET /api/v1/status and the status page;
        `retention_years` is node.toml's `[retention] years` (the due counts)."""
        return read_health(self.ctx, self.network, retention_years=retention_years)

    def status(self, retention_years: int = DEFAULT_YEARS) -> dict[str, Any]:
        """Sync health as GET /api/v1/status answers it."""
        return self.health(retention_years).to_map()
