"""The layer contracts of .importlinter hold, bite, and docs/map.md names every package.

`lint-imports` (import-linter) checks the contracts in `.importlinter` against
the real import graph; `make lint` runs it too. To prove the contracts are not
vacuous, a copy of the four packages gets one deliberate violation per contract
and lint-imports must report every contract broken. docs/map.md, the one-page
map of the house, must name every package and subpackage as a code path.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".importlinter"
MAP = ROOT / "docs" / "map.md"
PACKAGES = ("protocol", "support", "node", "hub")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

# One deliberate violation per contract id: (module, import appended to it or its
# whole source if it is new). A new module counts only inside a package that is a
# layer; hub/stats/cells.py is a module layer, so the import is appended to it.
VIOLATIONS: dict[str, tuple[str, str]] = {
    "node-hub-independent": ("hub/violation_node.py", "import node.errors\n"),
    "protocol-pure": ("protocol/violation_io.py", "import aiohttp\n"),
    "support-below-node-and-hub": ("support/violation_hub.py", "import hub.errors\n"),
    "node-layers": ("node/storage/violation_api.py", "import node.api.handlers\n"),
    "node-domain-pure": ("node/domain/violation_sqlite.py", "import sqlite3\n"),
    "hub-layers": ("hub/storage/violation_relay.py", "from hub import relay\n"),
    "hub-stats-layers": ("hub/stats/cells.py", "\nfrom hub.stats import view\n"),
    "hub-storage-bottom": ("hub/storage/violation_stats.py", "import hub.stats.store\n"),
}


def contracts() -> dict[str, str]:
    """Contract id -> contract name, as .importlinter declares them."""
    parser = configparser.ConfigParser()
    parser.read(CONFIG, encoding="utf-8")
    prefix = "importlinter:contract:"
    return {
        section.removeprefix(prefix): parser[section]["name"]
        for section in parser.sections()
        if section.startswith(prefix)
    }


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on cwd's packages with cwd's .importlinter; cwd comes first on the path."""
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "400", "NO_COLOR": "1"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", ".importlinter"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def flat(text: str) -> str:
    """Output with all whitespace runs collapsed, so wrapped contract names still match."""
    return " ".join(text.split())


def test_the_contracts_hold_on_the_current_tree() -> None:
    """lint-imports passes on the repository as it is, with no broken contract."""
    result = lint_imports(ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"Contracts: {len(contracts())} kept, 0 broken." in flat(output)


def test_every_contract_has_a_deliberate_violation() -> None:
    """A new contract in .importlinter needs a violation here, so it is proven to bite."""
    assert sorted(VIOLATIONS) == sorted(contracts())


def test_every_contract_bites_on_a_deliberate_violation(tmp_path: Path) -> None:
    """A copy of the packages with one violation per contract breaks every contract."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(CONFIG, tmp_path / ".importlinter")
    for relative, source in VIOLATIONS.values():
        path = tmp_path / relative
        before = path.read_text(encoding="utf-8") if path.exists() else ""
        path.write_text(before + source, encoding="utf-8")

    result = lint_imports(tmp_path)
    output = flat(result.stdout + result.stderr)
    assert result.returncode != 0, output
    names = contracts()
    assert f"Contracts: 0 kept, {len(names)} broken." in output
    for contract_id, name in names.items():
        assert f"{name} BROKEN" in output, contract_id
        # The violating module itself is named, so the failure is the planted one.
        module = VIOLATIONS[contract_id][0].removesuffix(".py").replace("/", ".")
        assert module in output, contract_id


def test_every_ignored_import_is_a_todo() -> None:
    """Each ignore_imports entry is a known upward import with a TODO(issue 12) saying why."""
    todo_seen = False
    in_ignores = False
    for line in CONFIG.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not line.startswith((" ", "\t")) and stripped:
            in_ignores = stripped.startswith("ignore_imports")
            todo_seen = False
        elif in_ignores and stripped.startswith("# TODO(issue 12):"):
            todo_seen = True
        elif in_ignores and "->" in stripped and not stripped.startswith("#"):
            assert todo_seen, f"ignored import without a TODO(issue 12) comment: {stripped}"
            todo_seen = False


def packages_on_disk() -> list[str]:
    """Every directory with an __init__.py under the four packages, as `dir/` paths."""
    found = {
        init.parent.relative_to(ROOT).as_posix() + "/"
        for package in PACKAGES
        for init in (ROOT / package).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    return sorted(found)


def test_the_map_names_every_package() -> None:
    """docs/map.md names each package and subpackage as a code path, e.g. `node/domain/`."""
    named = set(re.findall(r"`([a-z_][a-z0-9_/]*/)`", MAP.read_text(encoding="utf-8")))
    assert packages_on_disk(), "no packages found"
    missing = [path for path in packages_on_disk() if path not in named]
    assert missing == [], f"docs/map.md does not name: {missing}"


def test_the_readme_links_the_map() -> None:
    """README.md points newcomers to the map."""
    assert "docs/map.md" in (ROOT / "README.md").read_text(encoding="utf-8")
