"""Request counters and the Prometheus text rendering of /metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# psycopg_pool figures that are levels (gauges); every other one counts up since start.
POOL_LEVELS = frozenset({"pool_min", "pool_max", "pool_size", "pool_available", "requests_waiting"})


@dataclass
class Integrity:
    """What the hub knows about the state of its database file (docs/hub.md, "Corruption").

    `problems` is the last `PRAGMA quick_check`'s count; the rest is seen while
    serving since the process started: envelopes whose bytes no longer match
    their stored hash, rows SQLite cannot read, acknowledged rows it could
    not delete. Bytes changed inside a stored envelope pass quick_check (the
    file's structure is intact), so both kinds count.
    """

    checked: int | None = None
    problems: int = 0
    damaged: int = 0
    unreadable: set[int] = field(default_factory=set)
    failed_acks: int = 0

    @property
    def corrupt(self) -> bool:
        return bool(self.problems or self.damaged or self.unreadable or self.failed_acks)

    def checked_at(self, now: int, problems: int) -> None:
        self.checked, self.problems = now, problems

    def seen(self, damaged: int, unreadable: list[int], failed_acks: int = 0) -> list[int]:
        """Count what a fetch or an ack ran into; return the unreadable rows not seen before."""
        self.damaged += damaged
        self.failed_acks += failed_acks
        new = sorted(set(unreadable) - self.unreadable)
        self.unreadable.update(new)
        return new

    def as_json(self) -> dict[str, int | None]:
        return {
            "checked": self.checked,
            "problems": self.problems,
            "damaged_envelopes": self.damaged,
            "unreadable_rows": len(self.unreadable),
            "failed_acks": self.failed_acks,
        }


@dataclass
class Metrics:
    """Counts held by one application instance (no module-level state)."""

    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    integrity: Integrity = field(default_factory=Integrity)
    # Whether the last probe of the database (`hub.app.probe_ctx`) got an answer.
    reachable: bool = True

    def count(self, route: str, method: str, status: int) -> None:
        self.requests[(route, method, status)] += 1

    def render(
        self,
        *,
        queue_depth: int,
        oldest_age: int,
        max_node_bytes: int,
        quota: int,
        connected: int,
        pool: dict[str, int] | None = None,
    ) -> str:
        lines = [
            "# HELP mbe_hub_queue_depth Sealed messages waiting in the relay queue.",
            "# TYPE mbe_hub_queue_depth gauge",
            f"mbe_hub_queue_depth {queue_depth}",
            "# HELP mbe_hub_oldest_message_age_seconds Age of the oldest queued message.",
            "# TYPE mbe_hub_oldest_message_age_seconds gauge",
            f"mbe_hub_oldest_message_age_seconds {oldest_age}",
            "# HELP mbe_hub_queue_max_node_bytes Most envelope bytes one node has queued.",
            "# TYPE mbe_hub_queue_max_node_bytes gauge",
            f"mbe_hub_queue_max_node_bytes {max_node_bytes}",
            "# HELP mbe_hub_queue_node_quota_bytes relay.max_queue_bytes_per_node.",
            "# TYPE mbe_hub_queue_node_quota_bytes gauge",
            f"mbe_hub_queue_node_quota_bytes {quota}",
            "# HELP mbe_hub_connected_nodes Nodes with an open push connection.",
            "# TYPE mbe_hub_connected_nodes gauge",
            f"mbe_hub_connected_nodes {connected}",
            "# HELP mbe_hub_db_ok 1 while the database shows no damage, else 0.",
            "# TYPE mbe_hub_db_ok gauge",
            f"mbe_hub_db_ok {0 if self.integrity.corrupt else 1}",
            "# HELP mbe_hub_db_check_problems Problems found by the last PRAGMA quick_check.",
            "# TYPE mbe_hub_db_check_problems gauge",
            f"mbe_hub_db_check_problems {self.integrity.problems}",
            "# HELP mbe_hub_db_checked_timestamp_seconds When the last quick_check ran.",
            "# TYPE mbe_hub_db_checked_timestamp_seconds gauge",
            f"mbe_hub_db_checked_timestamp_seconds {self.integrity.checked or 0}",
            "# HELP mbe_hub_damaged_envelopes_total Envelopes removed as their bytes changed.",
            "# TYPE mbe_hub_damaged_envelopes_total counter",
            f"mbe_hub_damaged_envelopes_total {self.integrity.damaged}",
            "# HELP mbe_hub_unreadable_rows Queue rows skipped as unreadable since start.",
            "# TYPE mbe_hub_unreadable_rows gauge",
            f"mbe_hub_unreadable_rows {len(self.integrity.unreadable)}",
            "# HELP mbe_hub_failed_acks_total Acknowledged messages that could not be deleted.",
            "# TYPE mbe_hub_failed_acks_total counter",
            f"mbe_hub_failed_acks_total {self.integrity.failed_acks}",
            "# HELP mbe_hub_db_reachable 1 while the database answers the hub's probe, else 0.",
            "# TYPE mbe_hub_db_reachable gauge",
            f"mbe_hub_db_reachable {1 if self.reachable else 0}",
        ]
        for key, value in sorted((pool or {}).items()):
            # psycopg_pool's own figures (PostgreSQL only): levels such as pool_size and
            # requests_waiting, and counts since start, ending in _total (docs/operations.md).
            counter = key not in POOL_LEVELS
            name = "mbe_hub_db_pool_" + key.removeprefix("pool_") + ("_total" if counter else "")
            lines += [
                f"# HELP {name} psycopg_pool statistic {key}.",
                f"# TYPE {name} {'counter' if counter else 'gauge'}",
                f"{name} {int(value)}",
            ]
        lines += [
            "# HELP mbe_hub_requests_total HTTP requests by route, method and status.",
            "# TYPE mbe_hub_requests_total counter",
        ]
        for (route, method, status), n in sorted(self.requests.items()):
            route_label = route.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(
                f'mbe_hub_requests_total{{route="{route_label}",method="{method}",'
                f'status="{status}"}} {n}'
            )
        return "\n".join(lines) + "\n"
