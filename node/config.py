"""The node's one settings object, loaded once from DATA_DIR/node.toml.

A data directory holds `node.toml` (this file's input), `node.key` (the
node's private keys, mode 0600) and `node.db` (SQLite). Every problem with any
of them becomes a `ConfigError` whose message is one line naming the file and
the key, so `mbe-node` can print it without a traceback.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.domain.retention import DEFAULT_YEARS
from node.errors import ConfigError
from node.stats.settings import StatsSettings
from node.sync.settings import SyncSettings
from protocol.errors import MalformedError
from protocol.keys import PrivateKeys
from support import tomlfile
from support.datadir import DataDir
from support.tomlfile import TomlFileError, toml_string

CONFIG_FILE = "node.toml"
KEY_FILE = "node.key"
# During a key rotation (node/rotation.py): the new keys before the hub confirmed
# them, and the old keys until the overlap ends. Both mode 0600 like node.key.
PENDING_KEY_FILE = "node.key.next"
PREVIOUS_KEY_FILE = "node.key.previous"
DB_FILE = "node.db"
DEFAULT_PORT = 8480  # the hub defaults to 8470; both may share a machine in a demo
LOG_LEVELS = ("debug", "info", "warning", "error")
# [retention].years: the regular limitation period (§§ 195, 199 BGB) by default;
# docs/client-rights.md, "Retention", gives the reasoning.
DEFAULT_RETENTION_YEARS = DEFAULT_YEARS
MIN_RETENTION_YEARS = 1
MAX_RETENTION_YEARS = 30


def is_loopback_host(host: str) -> bool:
    """Whether `host` only listens on this machine: 127.0.0.0/8, ::1 or localhost.

    Anything else (a LAN address, 0.0.0.0, ::, "" for every interface, a host
    name that may resolve anywhere) counts as reachable from the network.
    """
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ApiSettings:
    """`[api]`: where the local API for counselling apps listens."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # The API speaks plain HTTP and carries client data: a host off loopback
    # must be chosen on purpose (and should sit behind a TLS reverse proxy).
    allow_network: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("[api].port must be between 0 and 65535")
        if self.network_exposed and not self.allow_network:
            raise ConfigError(
                f"[api].host {self.host!r} is not a loopback address: the API would be"
                " reachable from the network without TLS; keep 127.0.0.1 behind a TLS"
                " reverse proxy, or set api.allow_network = true to mean it"
            )

    @property
    def network_exposed(self) -> bool:
        """The API listens on an address other machines can reach."""
        return not is_loopback_host(self.host)


@dataclass(frozen=True)
class ReferralSettings:
    """`[referrals]`: when an unanswered referral expires (docs/node.md)."""

    answer_within_days: int = 14
    # How often the housekeeping task looks for referrals to expire (seconds).
    check_interval: float = 3600.0

    def __post_init__(self) -> None:
        if not 1 <= self.answer_within_days <= 365:
            raise ConfigError("[referrals].answer_within_days must be between 1 and 365")
        if not 1.0 <= self.check_interval <= 86400.0:
            raise ConfigError("[referrals].check_interval must be between 1 and 86400 seconds")


@dataclass(frozen=True)
class RetentionSettings:
    """`[retention]`: how long a closed case is kept (docs/client-rights.md, "Retention").

    A case closed in year Y is erased on 1 January of Y + years + 1 by the
    retention job (node/jobs/retention.py), unless it is on hold.
    """

    years: int = DEFAULT_RETENTION_YEARS

    def __post_init__(self) -> None:
        # bool is an int in Python; `years = true` must not mean one year.
        if isinstance(self.years, bool) or not isinstance(self.years, int):
            raise ConfigError("[retention].years must be a whole number of years")
        if not MIN_RETENTION_YEARS <= self.years <= MAX_RETENTION_YEARS:
            raise ConfigError(
                f"[retention].years must be between {MIN_RETENTION_YEARS} and {MAX_RETENTION_YEARS}"
            )


@dataclass(frozen=True)
class NodeSettings(DataDir):
    """Everything a running node needs to know, from node.toml and the data dir."""

    config_name = CONFIG_FILE
    key_name = KEY_FILE
    db_name = DB_FILE

    name: str = "mbe-node"
    api: ApiSettings = field(default_factory=ApiSettings)
    log_level: str = "info"
    sync: SyncSettings = field(default_factory=SyncSettings)
    stats: StatsSettings = field(default_factory=StatsSettings)
    referrals: ReferralSettings = field(default_factory=ReferralSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)

    @property
    def pending_key_path(self) -> Path:
        return self.data_dir / PENDING_KEY_FILE

    @property
    def previous_key_path(self) -> Path:
        return self.data_dir / PREVIOUS_KEY_FILE


_TYPES: dict[type, tuple[type, ...]] = {
    str: (str,),
    int: (int,),
    float: (int, float),
    bool: (bool,),
}


def _typed(table: str, key: str, value: Any, expected: type) -> Any:
    ok = _TYPES.get(expected)
    if ok is None:  # a type this parser does not know; the dataclass validates it
        return value
    if isinstance(value, bool) and expected is not bool:
        ok = ()
    if not isinstance(value, ok):
        raise ConfigError(f"{CONFIG_FILE}: [{table}].{key} must be of type {expected.__name__}")
    # TOML allows nan and ±inf; no setting means them (asyncio.sleep(nan) returns
    # at once, an infinite backoff never retries). One check for every float key.
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{CONFIG_FILE}: [{table}].{key} must be a finite number, not {value}")
    return float(value) if isinstance(value, int | float) and expected is float else value


def _table(doc: dict[str, Any], name: str, allowed: dict[str, type]) -> dict[str, Any]:
    raw = doc.get(name, {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{CONFIG_FILE}: [{name}] must be a table")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ConfigError(f"{CONFIG_FILE}: unknown key [{name}].{unknown[0]}")
    return {k: _typed(name, k, v, allowed[k]) for k, v in raw.items()}


def _sync_fields() -> dict[str, type]:
    # Annotations are strings (postponed evaluation); map the simple ones back.
    hints: dict[str, type] = {"float": float, "int": int, "bool": bool, "str": str}
    return {f.name: hints.get(str(f.type), object) for f in dataclasses.fields(SyncSettings)}


def parse_settings(text: str, data_dir: Path, *, complete: bool = False) -> NodeSettings:
    """Build settings from node.toml text; raise ConfigError with one clear line.

    `complete`: the text is a whole node.toml (as `load_settings` reads it), so an
    empty file, or one without `[node].name` (truncated), is refused rather than
    run on defaults. Without it a fragment is read over the defaults.
    """
    try:
        doc = tomlfile.parse(text, CONFIG_FILE)
    except TomlFileError as exc:
        raise ConfigError(str(exc)) from None
    if complete and not doc:
        raise ConfigError(
            f"{CONFIG_FILE} is empty; restore it from a backup or write it again"
            " (deploy/node.toml.example shows every key)"
        )
    unknown = sorted(set(doc) - {"node", "api", "log", "sync", "stats", "referrals", "retention"})
    if unknown:
        raise ConfigError(f"{CONFIG_FILE}: unknown table [{unknown[0]}]")
    node = _table(doc, "node", {"name": str})
    api = _table(doc, "api", {"host": str, "port": int, "allow_network": bool})
    log = _table(doc, "log", {"level": str})
    sync = _table(doc, "sync", _sync_fields())
    stats = _stats_table(doc)
    referrals = _table(doc, "referrals", {"answer_within_days": int, "check_interval": float})
    retention = _table(doc, "retention", {"years": int})
    level = log.get("level", "info")
    if level not in LOG_LEVELS:
        raise ConfigError(f"{CONFIG_FILE}: [log].level must be one of {', '.join(LOG_LEVELS)}")
    try:
        api_settings = ApiSettings(**api)
        sync_settings = SyncSettings(**sync)
        referral_settings = ReferralSettings(**referrals)
        retention_settings = RetentionSettings(**retention)
    except ConfigError as exc:
        # The sections name the key ("sync.poll_interval ..."); add the file.
        raise ConfigError(f"{CONFIG_FILE}: {exc}") from None
    if complete and not node.get("name", "").strip():
        raise ConfigError(
            f"{CONFIG_FILE}: [node].name (the office's name) is missing or blank;"
            " the file may be truncated (deploy/node.toml.example shows every key)"
        )
    return NodeSettings(
        data_dir=data_dir,
        name=node.get("name", "mbe-node"),
        api=api_settings,
        log_level=level,
        sync=sync_settings,
        stats=stats,
        referrals=referral_settings,
        retention=retention_settings,
    )


def _stats_table(doc: dict[str, Any]) -> StatsSettings:
    fields = {
        "auto_submit": bool,
        "submit_after_days": int,
        "periods": list,
        "lookback_months": int,
        "check_interval": float,
        "retry_min": float,
    }
    raw = _table(doc, "stats", fields)
    periods = raw.get("periods")
    if periods is not None:
        if not isinstance(periods, list) or not all(isinstance(p, str) for p in periods):
            raise ConfigError(f"{CONFIG_FILE}: [stats].periods must be a list of strings")
        raw["periods"] = tuple(periods)
    try:
        return StatsSettings(**raw)
    except ConfigError as exc:
        raise ConfigError(f"{CONFIG_FILE}: {exc}") from None


def load_settings(data_dir: Path) -> NodeSettings:
    """Read DATA_DIR/node.toml once at start-up."""
    path = data_dir / CONFIG_FILE
    if not data_dir.is_dir():
        raise ConfigError(f"data directory {data_dir} does not exist (run mbe-node init)")
    try:
        text = tomlfile.read_text(path, missing_hint=f"run mbe-node init --dir {data_dir}")
    except TomlFileError as exc:
        raise ConfigError(str(exc)) from None
    return parse_settings(text, data_dir, complete=True)


def check_office_name(name: str) -> str:
    """An office name for node.toml: one line of printable text, storable as UTF-8."""
    if not name.strip() or len(name) > 200:
        raise ConfigError("the office name must be 1 to 200 characters")
    # Cc: control characters (newline, tab, ...); Zl/Zp: line and paragraph
    # separators; Cs: lone surrogates, which argv holds for bytes that are not UTF-8.
    categories = {unicodedata.category(c) for c in name}
    if categories & {"Cs"}:
        raise ConfigError("the office name is not valid text (check the terminal's encoding)")
    if categories & {"Cc", "Zl", "Zp"}:
        raise ConfigError("the office name must be one line without control characters")
    return name


def default_config(name: str) -> str:
    """The node.toml `mbe-node init` writes: every key at its default, documented."""
    s = SyncSettings()
    st = StatsSettings()
    rs = ReferralSettings()
    rt = RetentionSettings()
    escaped = toml_string(name)
    return f"""# mbe-node configuration. See deploy/node.toml.example for every key.
[node]
name = {escaped}

[api]
# The local API for counselling apps. Keep it on loopback unless a
# reverse proxy with TLS sits in front of it.
host = "127.0.0.1"
port = {DEFAULT_PORT}
# A host other than loopback is refused unless this is true: the API speaks
# plain HTTP and carries client data.
allow_network = false

[log]
level = "info"

[sync]
poll_interval = {s.poll_interval}
min_backoff = {s.min_backoff}
max_backoff = {s.max_backoff}
push = {"true" if s.push else "false"}
message_ttl = {s.message_ttl}
directory_refresh = {s.directory_refresh}
batch_size = {s.batch_size}
request_timeout = {s.request_timeout}
prefer_first_after = {s.prefer_first_after}

[stats]
# Submit the office's statistics after each period ends (manual submission
# with `mbe-node stats submit` works either way).
auto_submit = {"true" if st.auto_submit else "false"}
submit_after_days = {st.submit_after_days}
periods = [{", ".join(f'"{p}"' for p in st.periods)}]
lookback_months = {st.lookback_months}
check_interval = {st.check_interval}
retry_min = {st.retry_min}

[referrals]
# An outgoing referral nobody answered expires after this many days; the
# recipient is told to delete what it received. An incoming one this office
# never answered expires, and its client data is deleted, after the same time.
answer_within_days = {rs.answer_within_days}
check_interval = {rs.check_interval}

[retention]
# A closed case is erased on 1 January of (year closed + years + 1), unless it
# is on hold. 3 years follows the regular limitation period (§§ 195, 199 BGB);
# set the office's own period with its data protection officer
# (docs/client-rights.md, "Retention"). 1 to 30.
years = {rt.years}
"""


def load_keys(path: Path) -> PrivateKeys:
    """Read the node's private keys; refuse a key file others can read."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise ConfigError(f"{path} not found (run mbe-node init)") from None
    if mode & 0o077:
        raise ConfigError(f"{path} has mode {mode:04o}; run chmod 600 {path}")
    try:
        return PrivateKeys.from_bytes(path.read_bytes())
    except (OSError, MalformedError):
        raise ConfigError(f"{path} is not a valid key file") from None
