"""node.toml values that would silently disable a protection are refused (issue 10, item 4)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from node.cli import main
from node.config import ApiSettings, ReferralSettings, load_settings
from node.errors import ConfigError
from node.stats.settings import StatsSettings
from node.sync.settings import SyncSettings

FLOAT_KEYS = sorted(
    (table, f.name)
    for table, settings in (
        ("sync", SyncSettings),
        ("stats", StatsSettings),
        ("referrals", ReferralSettings),
        ("api", ApiSettings),
    )
    for f in dataclasses.fields(settings)
    if str(f.type) == "float"
)


def _init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A data directory as `mbe-node init` makes it."""
    data = tmp_path / "office"
    assert main(["init", "--dir", str(data), "--name", "AWO Fürth"]) == 0
    capsys.readouterr()
    return data


def _set(data: Path, table: str, key: str, value: str) -> None:
    """Set `[table].key = value` in node.toml, replacing the line init wrote or adding one."""
    path = data / "node.toml"
    lines = path.read_text(encoding="utf-8").splitlines()
    current, done, out = "", False, []
    for line in lines:
        if line.startswith("["):
            if current == table and not done:
                out.append(f"{key} = {value}")
                done = True
            current = line.strip("[] ")
        if current == table and line.split("=", 1)[0].strip() == key:
            out.append(f"{key} = {value}")
            done = True
            continue
        out.append(line)
    if not done:
        out += ([] if current == table else [f"[{table}]"]) + [f"{key} = {value}"]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def _refusal(data: Path) -> str:
    """The one-line ConfigError loading `data` raises."""
    with pytest.raises(ConfigError) as exc:
        load_settings(data)
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_every_float_setting_is_covered() -> None:
    """The parametrisation below sees every float setting of node.toml."""
    assert ("sync", "poll_interval") in FLOAT_KEYS
    assert ("sync", "max_backoff") in FLOAT_KEYS
    assert ("referrals", "check_interval") in FLOAT_KEYS
    assert ("sync", "prefer_first_after") in FLOAT_KEYS
    assert len(FLOAT_KEYS) == 9


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan"])
@pytest.mark.parametrize(("table", "key"), FLOAT_KEYS)
def test_non_finite_float_is_refused_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, key: str, value: str
) -> None:
    """nan and ±inf in any float setting stop loading with one line naming the key."""
    data = _init(tmp_path, capsys)
    _set(data, table, key, value)
    message = _refusal(data)
    assert f"[{table}].{key}" in message
    assert "finite" in message


@pytest.mark.parametrize(
    ("table", "key", "value"),
    [
        ("sync", "poll_interval", "0.0"),
        ("sync", "poll_interval", "-1.0"),
        ("sync", "poll_interval", "1e12"),
        ("sync", "max_backoff", "1e12"),
        ("sync", "min_backoff", "0.0"),
        ("sync", "request_timeout", "0.0"),
        ("sync", "request_timeout", "1e9"),
        ("sync", "directory_refresh", "-5.0"),
        ("sync", "directory_refresh", "1e12"),
    ],
)
def test_out_of_range_sync_number_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, key: str, value: str
) -> None:
    """Sync times must be above zero and below a sane ceiling; others stop loading."""
    data = _init(tmp_path, capsys)
    _set(data, table, key, value)
    assert f"{table}.{key}" in _refusal(data)


def test_empty_stats_periods_is_refused_naming_allowed_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """stats.periods = [] is refused with the allowed kinds and the switch that turns it off."""
    data = _init(tmp_path, capsys)
    _set(data, "stats", "periods", "[]")
    message = _refusal(data)
    assert "stats.periods" in message
    assert "month, quarter, year" in message
    assert "stats.auto_submit" in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_node_toml_is_refused(tmp_path: Path, text: str) -> None:
    """An empty node.toml (or one holding only comments) is refused, not run on defaults."""
    (tmp_path / "node.toml").write_text(text, encoding="utf-8")
    message = _refusal(tmp_path)
    assert "node.toml" in message
    assert "empty" in message


@pytest.mark.parametrize(
    "text",
    [
        '[api]\nhost = "127.0.0.1"\n',
        "[node]\n",
        '[node]\nname = ""\n',
        '[node]\nname = "   "\n',
    ],
)
def test_node_toml_without_office_name_is_refused(tmp_path: Path, text: str) -> None:
    """A node.toml missing [node].name (truncated) or with a blank one is refused."""
    (tmp_path / "node.toml").write_text(text, encoding="utf-8")
    message = _refusal(tmp_path)
    assert "[node].name" in message


def test_truncated_init_file_is_refused_by_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status on a node.toml cut before [node].name fails with one line, not "mbe-node"."""
    data = _init(tmp_path, capsys)
    (data / "node.toml").write_text("# mbe-node configuration.\n", encoding="utf-8")
    code = main(["status", "--dir", str(data)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "empty" in err


@pytest.mark.parametrize(
    "host",
    ["0.0.0.0", "::", "192.168.1.10", "", "node.example.org"],  # noqa: S104 - refused here
)
def test_non_loopback_api_host_is_refused_without_allow_network(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    """An API host off loopback is refused unless api.allow_network = true says so."""
    data = _init(tmp_path, capsys)
    _set(data, "api", "host", f'"{host}"')
    message = _refusal(data)
    assert "api.allow_network" in message
    _set(data, "api", "allow_network", "true")
    settings = load_settings(data)
    assert (settings.api.host, settings.api.allow_network) == (host, True)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST"])
def test_loopback_api_host_needs_no_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    """Loopback hosts load without api.allow_network, which defaults to false."""
    data = _init(tmp_path, capsys)
    _set(data, "api", "host", f'"{host}"')
    settings = load_settings(data)
    assert (settings.api.host, settings.api.allow_network) == (host, False)
    assert not settings.api.network_exposed


def test_allow_network_must_be_a_bool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """api.allow_network = "yes" is a type error naming the key."""
    data = _init(tmp_path, capsys)
    _set(data, "api", "allow_network", '"yes"')
    assert "[api].allow_network" in _refusal(data)


def _status(data: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert main(["status", "--dir", str(data)]) == 0
    out = capsys.readouterr().out
    return {k.strip(): v.strip() for k, v in (line.split("  ", 1) for line in out.splitlines())}


def test_status_says_when_the_api_is_reachable_from_the_network(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status warns that the API is reachable from the network only when it is."""
    data = _init(tmp_path, capsys)
    quiet = _status(data, capsys)
    assert not any("network" in v for v in quiet.values())
    _set(data, "api", "host", '"0.0.0.0"')
    _set(data, "api", "allow_network", "true")
    rows = _status(data, capsys)
    exposed = [v for v in rows.values() if "reachable from the network" in v]
    assert len(exposed) == 1
    assert "TLS" in exposed[0]
    assert rows["API"] == "http://0.0.0.0:8480/api/v1 (configured; mbe-node serve is not running)"
