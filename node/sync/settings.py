"""Settings of the link to the hub; part of the node's one settings object."""

from __future__ import annotations

from dataclasses import dataclass

from node.errors import ConfigError

# Ceilings: a longer poll, backoff or refresh looks like a node that stopped
# syncing; a longer timeout hangs on a dead hub (it is also the push heartbeat).
MAX_INTERVAL = 86400.0
MAX_REQUEST_TIMEOUT = 600.0


@dataclass(frozen=True)
class SyncSettings:
    """`[sync]` in node.toml. Times in seconds."""

    # Poll the inbox this often when the push connection is down.
    poll_interval: float = 30.0
    # Retry backoff: starts at `min_backoff`, doubles, capped at `max_backoff`, with jitter.
    min_backoff: float = 1.0
    max_backoff: float = 300.0
    # Use the WebSocket push channel ("you have mail"); polling remains the fallback.
    push: bool = True
    # How long a sealed message may wait in the hub before it expires.
    message_ttl: int = 14 * 24 * 3600
    # Refresh the directory this often.
    directory_refresh: float = 3600.0
    # Upload and fetch batch size.
    batch_size: int = 100
    # HTTP timeout for one request to the hub.
    request_timeout: float = 30.0
    # With several hub URLs: how long the node stays on a later URL before it
    # tries the first (preferred) one again (node/sync/hub_urls.py).
    prefer_first_after: float = 300.0

    def __post_init__(self) -> None:
        # Written as `not lo < x <= hi` so nan (which compares false) is refused too.
        if not 0 < self.min_backoff <= self.max_backoff <= MAX_INTERVAL:
            raise ConfigError(
                "sync.min_backoff and sync.max_backoff need 0 < min_backoff <= max_backoff <= 86400"
            )
        if not 0 < self.poll_interval <= MAX_INTERVAL:
            raise ConfigError("sync.poll_interval must be > 0 and at most 1 day (86400)")
        if not 0 < self.directory_refresh <= MAX_INTERVAL:
            raise ConfigError("sync.directory_refresh must be > 0 and at most 1 day (86400)")
        if not 1 <= self.batch_size <= 1000:
            raise ConfigError("sync.batch_size must be between 1 and 1000")
        if not 3600 <= self.message_ttl <= 90 * 24 * 3600:
            raise ConfigError("sync.message_ttl must be between 1 hour and 90 days")
        if not 1 <= self.prefer_first_after <= MAX_INTERVAL:
            raise ConfigError("sync.prefer_first_after must be between 1 and 86400 seconds")
        if not 0 < self.request_timeout <= MAX_REQUEST_TIMEOUT:
            raise ConfigError("sync.request_timeout must be > 0 and at most 600 seconds")
