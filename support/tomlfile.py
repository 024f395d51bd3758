"""The services' TOML config files (`node.toml`, `hub.toml`): reading and writing values.

Reading turns every problem into one `TomlFileError` line that names the file,
which each side re-raises as its own `ConfigError`. Writing (`mbe-node init`,
`mbe-hub init`) quotes values with `toml_string`, so whatever an operator
typed, the file stays valid TOML and reads back as exactly that value.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


class TomlFileError(Exception):
    """A config file cannot be read or is not TOML; the message is one line."""


def read_text(path: Path, *, missing_hint: str) -> str:
    """The file's text; a missing file names `missing_hint` (e.g. "run mbe-hub init")."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TomlFileError(f"{path} not found ({missing_hint})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TomlFileError(f"{path}: cannot read ({exc.__class__.__name__})") from None


def parse(text: str, name: str) -> dict[str, Any]:
    """The TOML document in `text`; `name` is the file name for the message."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlFileError(f"{name}: not valid TOML ({exc})") from None


def toml_string(value: str) -> str:
    """`value` as a TOML basic string: quotes, backslashes and every control
    character escaped, so whatever a name holds, the file stays valid TOML."""
    out = []
    for c in value:
        if c in ('"', "\\"):
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'
