"""What every part of the store shares: the database, our keys, clock and randomness."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from node.clock import Deps
from protocol.keys import PrivateKeys


@dataclass(frozen=True)
class StoreContext:
    db: sqlite_utils.Database
    keys: PrivateKeys
    deps: Deps
    # How long a sealed message may wait at the hub (SyncSettings.message_ttl).
    message_ttl: int
    # How long another office has to answer (ReferralSettings.answer_within_days):
    # an erasure notice without a receipt after this long is overdue.
    answer_within_days: int = 14

    def now(self) -> int:
        return self.deps.clock.now()

    def today(self) -> str:
        return self.deps.clock.today()

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        for row in self.db.query(sql, params):
            return row
        return None

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Execute a write; return the number of rows changed."""
        return int(self.db.execute(sql, params).rowcount)


def iso(ts: int | None) -> str | None:
    """Unix seconds as an RFC 3339 UTC timestamp for API responses."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads_list(text: str | None) -> list[Any]:
    if not text:
        return []
    value = json.loads(text)
    return value if isinstance(value, list) else []
