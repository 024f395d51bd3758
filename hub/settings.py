"""The hub's one settings object, read once from `hub.toml` in the data directory.

Every section is a frozen dataclass; the loader refuses unknown keys and values
of the wrong type with one line that names the key, so a typo in the config
never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import tomllib
import unicodedata
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.errors import ConfigError, DataDirError
from hub.stats.errors import StatsError
from hub.stats.ptable import PerturbationParams
from protocol.hub_api import MAX_INBOX_BYTES
from support import tomlfile
from support.datadir import DataDir
from support.tomlfile import TomlFileError, toml_string

CONFIG_FILE = "hub.toml"
KEY_FILE = "hub.key"
DB_FILE = "hub.db"
DAY = 24 * 3600


@dataclass(frozen=True)
class ServerSettings:
    """`[server]`: where `mbe-hub serve` listens (behind a TLS reverse proxy)."""

    host: str = "127.0.0.1"
    port: int = 8470

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("server.port must be between 0 and 65535")


@dataclass(frozen=True)
class RelaySettings:
    """`[relay]`: limits of the store-and-forward queue. Times in seconds."""

    max_ttl: int = 90 * DAY
    max_batch: int = 1000
    max_body: int = 32 << 20
    max_fetch_bytes: int = 8 << 20
    expiry_interval: float = 60.0
    notice_ttl: int = 30 * DAY
    log_retention: int = 180 * DAY
    # Envelope bytes one node may have queued (undelivered) at once, so one
    # buggy or compromised office cannot fill the hub's disk for everyone.
    max_queue_bytes_per_node: int = 256 << 20

    def __post_init__(self) -> None:
        if self.max_ttl < 3600:
            raise ConfigError("relay.max_ttl must be at least 3600 seconds")
        if not 1 <= self.max_batch <= 10_000:
            raise ConfigError("relay.max_batch must be between 1 and 10000")
        if self.max_body < 64 << 10:
            raise ConfigError("relay.max_body must be at least 65536 bytes")
        if not 2 << 20 <= self.max_fetch_bytes <= MAX_INBOX_BYTES:
            # A node reads no larger inbox page (protocol/hub_api.py).
            raise ConfigError(
                f"relay.max_fetch_bytes must be between 2097152 and {MAX_INBOX_BYTES} bytes"
            )
        if self.expiry_interval <= 0 or self.notice_ttl < 3600 or self.log_retention < DAY:
            raise ConfigError(
                "relay.expiry_interval must be > 0, relay.notice_ttl >= 3600, "
                "relay.log_retention >= 86400"
            )
        if self.max_queue_bytes_per_node < self.max_body:
            raise ConfigError("relay.max_queue_bytes_per_node must be at least relay.max_body")


@dataclass(frozen=True)
class AuthSettings:
    """`[auth]`: request signature checks."""

    max_skew: int = 300

    def __post_init__(self) -> None:
        if not 10 <= self.max_skew <= 3600:
            raise ConfigError("auth.max_skew must be between 10 and 3600 seconds")


@dataclass(frozen=True)
class EnrollmentSettings:
    """`[enrollment]`: one-time codes and the certificates they lead to."""

    code_ttl: int = DAY
    cert_ttl: int = 730 * DAY

    def __post_init__(self) -> None:
        if not 60 <= self.code_ttl <= 30 * DAY:
            raise ConfigError("enrollment.code_ttl must be between 60 seconds and 30 days")
        if self.cert_ttl < DAY:
            raise ConfigError("enrollment.cert_ttl must be at least one day")


@dataclass(frozen=True)
class DirectorySettings:
    """`[directory]`: how long a signed directory is valid and when it is re-signed;
    how long a node's old keys stay valid after it rotated them (`key_overlap`);
    the shortest time between two versions that enrollments ask for
    (`publish_interval`, hub/publisher.py)."""

    ttl: int = 7 * DAY
    resign_before: int = 2 * DAY
    key_overlap: int = 7 * DAY
    publish_interval: int = 1

    def __post_init__(self) -> None:
        if self.ttl < 3600 or not 0 < self.resign_before < self.ttl:
            raise ConfigError(
                "directory.ttl must be at least 3600 and directory.resign_before "
                "between 1 and directory.ttl"
            )
        if not 60 <= self.key_overlap <= 90 * DAY:
            raise ConfigError("directory.key_overlap must be between 60 seconds and 90 days")
        if not 0 <= self.publish_interval <= 3600:
            raise ConfigError("directory.publish_interval must be between 0 and 3600 seconds")


@dataclass(frozen=True)
class StatsSettings:
    """`[stats]`: disclosure control, reporting deadlines and coordinator sessions.

    `max_noise`, `variance` and `js` are the cell key method's published
    parameters (docs/statistics.md): |noise| <= max_noise, noise variance, and no
    published number in 1..js. Values that would switch the protection off are
    refused (js = 0 publishes ones; see PerturbationParams for the bounds).
    """

    max_noise: int = 4
    variance: float = 1.0
    js: int = 2
    min_offices: int = 3
    grace_days: int = 15
    timezone: str = "Europe/Berlin"
    session_ttl: int = 8 * 3600
    secure_cookie: str = "auto"

    def __post_init__(self) -> None:
        if self.js < 1:
            raise ConfigError(
                "stats.js must be at least 1: with 0, counts of one person are published"
            )
        try:
            PerturbationParams(max_noise=self.max_noise, variance=self.variance, js=self.js)
        except StatsError as exc:
            raise ConfigError(f"stats: {exc}") from None
        if not 1 <= self.min_offices <= 1000:
            raise ConfigError("stats.min_offices must be between 1 and 1000")
        if not 0 <= self.grace_days <= 366:
            raise ConfigError("stats.grace_days must be between 0 and 366")
        if not 300 <= self.session_ttl <= 30 * DAY:
            raise ConfigError("stats.session_ttl must be between 300 seconds and 30 days")
        if self.secure_cookie not in {"auto", "always", "never"}:
            raise ConfigError("stats.secure_cookie must be auto, always or never")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ConfigError(
                f"stats.timezone {self.timezone!r} is not a known time zone"
            ) from None


@dataclass(frozen=True)
class DatabaseSettings:
    """`[database]`: where the hub keeps its state.

    No `url` (the default): SQLite, the file hub.db in the data directory, for
    one hub process. `url = "postgresql://user@host:5432/dbname"`: PostgreSQL,
    for several hub processes on one replicated database (docs/operations.md).
    Keep the password out of hub.toml: libpq reads it from `~/.pgpass` or
    `PGPASSFILE` of the user the hub runs as. `pool_size`: connections each
    hub process keeps to PostgreSQL at most (one writer, the rest readers).
    """

    url: str = ""
    pool_size: int = 8

    def __post_init__(self) -> None:
        if self.url:
            scheme, sep, rest = self.url.partition("://")
            if scheme not in ("postgresql", "postgres") or not sep or not rest:
                raise ConfigError(
                    "database.url must be a PostgreSQL URL, postgresql://user@host:5432/dbname"
                    " (leave it out for SQLite in the data directory)"
                )
            if _unprintable(self.url) or any(c.isspace() for c in self.url):
                raise ConfigError("database.url must not contain spaces or control characters")
        if not 2 <= self.pool_size <= 100:
            raise ConfigError("database.pool_size must be between 2 and 100")

    @property
    def postgres_url(self) -> str | None:
        """The PostgreSQL URL, or None for SQLite."""
        return self.url or None


@dataclass(frozen=True)
class HubSettings(DataDir):
    """Everything the hub reads from its data directory's hub.toml."""

    config_name = CONFIG_FILE
    key_name = KEY_FILE
    db_name = DB_FILE

    region: str = "region"
    public_url: str = "http://127.0.0.1:8470"
    log_level: str = "info"
    server: ServerSettings = field(default_factory=ServerSettings)
    relay: RelaySettings = field(default_factory=RelaySettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    enrollment: EnrollmentSettings = field(default_factory=EnrollmentSettings)
    directory: DirectorySettings = field(default_factory=DirectorySettings)
    stats: StatsSettings = field(default_factory=StatsSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)

    def __post_init__(self) -> None:
        if not self.region.strip() or len(self.region) > 100:
            raise ConfigError("region must be 1 to 100 characters")
        if _unprintable(self.region):
            raise ConfigError("region must not contain control characters")
        if not self.public_url.startswith(("https://", "http://")):
            raise ConfigError("public_url must start with https:// (or http:// for testing)")
        if _unprintable(self.public_url) or any(c.isspace() for c in self.public_url):
            raise ConfigError("public_url must not contain spaces or control characters")
        if self.log_level not in {"debug", "info", "warning", "error"}:
            raise ConfigError("log_level must be one of debug, info, warning, error")


_SECTIONS: dict[str, type[Any]] = {
    "server": ServerSettings,
    "relay": RelaySettings,
    "auth": AuthSettings,
    "enrollment": EnrollmentSettings,
    "directory": DirectorySettings,
    "stats": StatsSettings,
    "database": DatabaseSettings,
}


# Settings of earlier versions, with what took their place.
_REPLACED = {
    "stats.k": (
        "; suppression was replaced by the cell key method: set stats.js "
        "(no published number in 1..js) instead"
    ),
}

_TYPES: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "str": str}


def _build(cls: type[Any], values: dict[str, Any], where: str) -> Any:
    """Construct a settings dataclass from a TOML table, checking names and types."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in _SECTIONS}
    fields.pop("data_dir", None)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in _SECTIONS and cls is HubSettings:
            continue
        f = fields.get(key)
        name = f"{where}{key}"
        if f is None:
            hint = _REPLACED.get(name, "")
            raise ConfigError(f"unknown setting {name!r} in {CONFIG_FILE}{hint}")
        expected = _TYPES[str(f.type)]
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ConfigError(f"setting {name!r} in {CONFIG_FILE} must be of type {f.type}")
        out[key] = value
    return out


def load_settings(data_dir: Path) -> HubSettings:
    """Read and validate `data_dir/hub.toml`; raise ConfigError or DataDirError."""
    if not data_dir.is_dir():
        raise DataDirError(f"data directory {data_dir} does not exist (run `mbe-hub init`)")
    path = data_dir / CONFIG_FILE
    try:
        raw = tomlfile.parse(tomlfile.read_text(path, missing_hint="run `mbe-hub init`"), str(path))
    except TomlFileError as exc:
        raise ConfigError(str(exc)) from None
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{name}] in {CONFIG_FILE} must be a table")
        sections[name] = cls(**_build(cls, table, f"{name}."))
    top = _build(HubSettings, raw, "")
    return HubSettings(data_dir=data_dir, **top, **sections)


def _unprintable(value: str) -> bool:
    """Control characters (TOML refuses most of them raw) or lone surrogates (not UTF-8)."""
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in value)


def default_config(region: str, public_url: str) -> str:
    """The hub.toml `mbe-hub init` writes: the two site-specific values, defaults commented."""
    HubSettings(data_dir=Path("."), region=region, public_url=public_url)  # validates
    text = _config_text(region, public_url)
    # Whatever the values, the file must read back as exactly them.
    parsed = tomllib.loads(text)
    if (parsed["region"], parsed["public_url"]) != (region, public_url):
        raise ConfigError("region or url cannot be written to hub.toml as given")
    return text


def _config_text(region: str, public_url: str) -> str:
    return (
        "# mbe-hub configuration. See README.md, 'Configuration reference'.\n"
        f"region = {_toml_str(region)}\n"
        f"public_url = {_toml_str(public_url)}\n"
        'log_level = "info"\n'
        "\n[server]\n"
        'host = "127.0.0.1"\n'
        "port = 8470\n"
        "\n[relay]\n"
        "# max_ttl = 7776000\n"
        "# max_batch = 1000\n"
        "\n[enrollment]\n"
        "# code_ttl = 86400\n"
        "\n[directory]\n"
        "# ttl = 604800\n"
    )


def _toml_str(value: str) -> str:
    if _unprintable(value):
        raise ConfigError("region and url must not contain control characters")
    return toml_string(value)
