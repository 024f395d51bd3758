"""The import direction of docs/architecture.md.

protocol is pure (no I/O, no clock); support holds the helpers with I/O both
sides need and imports only protocol and third-party libraries; node and hub
may import protocol and support, never each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "protocol": {
        "node",
        "hub",
        "asyncio",
        "aiohttp",
        "sqlite3",
        "sqlite_utils",
        "socket",
        "time",
        "random",
        "secrets",
        "os",
        "support",
        "structlog",
    },
    "support": {"node", "hub", "demo"},
    "node": {"hub", "demo"},
    "hub": {"node", "demo"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_respect_the_layering(package: str) -> None:
    """No module of a package imports what docs/architecture.md forbids it (protocol: no I/O)."""
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"package {package} has no modules"
    offenders = {
        str(f.relative_to(ROOT)): sorted(imported_modules(f) & FORBIDDEN[package]) for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_checker_sees_imports(tmp_path: Path) -> None:
    """The import scanner finds plain, dotted and from-imports (so the check above can fail)."""
    f = tmp_path / "m.py"
    f.write_text("import os.path\nfrom aiohttp import web\nfrom . import sibling\n")
    assert imported_modules(f) == {"os", "aiohttp"}
