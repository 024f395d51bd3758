"""Request counters and the Prometheus text rendering of /metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Metrics:
    """Counts held by one application instance (no module-level state)."""

    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)

    def count(self, route: str, method: str, status: int) -> None:
        self.requests[(route, method, status)] += 1

    def render(
        self, *, queue_depth: int, oldest_age: int, max_node_bytes: int, quota: int, connected: int
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
