"""Every hub setting and command is documented; the example config loads."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from hub.cli import build_parser
from hub.settings import HubSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def _setting_names() -> list[str]:
    names = []
    for f in dataclasses.fields(HubSettings):
        if f.name == "data_dir":
            continue
        default = getattr(HubSettings(data_dir=Path()), f.name)
        if dataclasses.is_dataclass(default):
            names += [f"{f.name}.{g.name}" for g in dataclasses.fields(default)]
        else:
            names.append(f.name)
    return names


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start : end if end > 0 else None]


def test_every_setting_is_in_readme_and_example() -> None:
    """Each hub.toml key appears in the README reference and in deploy/hub.toml.example."""
    readme = _readme_section("### hub.toml")
    example = (ROOT / "deploy" / "hub.toml.example").read_text(encoding="utf-8")
    for name in _setting_names():
        assert f"`{name}" in readme or f"{name.split('.')[0]}.{name.split('.')[-1]}" in readme, name
        assert f"{name.split('.')[-1]} =" in example, name


def test_example_config_loads(tmp_path: Path) -> None:
    """deploy/hub.toml.example is a valid hub.toml."""
    shutil.copy(ROOT / "deploy" / "hub.toml.example", tmp_path / "hub.toml")
    s = load_settings(tmp_path)
    assert s.public_url == "https://hub.example.org"
    assert s.relay.max_batch == 1000


def test_every_command_is_in_the_readme() -> None:
    """Every `mbe-hub` command (init, serve, site, token, backup, restore, stats) is in the
    README."""
    readme = _readme_section("## Running a hub for real")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and "init" in a.choices)
    assert sub.choices is not None
    commands = {"init", "serve", "site add", "site list", "site revoke"}
    commands |= {"token create", "token list", "token revoke"}
    commands |= {"backup", "restore", "stats status", "stats publish", "db migrate"}
    assert set(sub.choices) == {c.split()[0] for c in commands}
    for command in commands:
        assert f"mbe-hub {command}" in readme or command in readme, command
