"""The lock files agree with pyproject.toml, and every install goes through them.

requirements.lock (runtime, for deploy/) and requirements-test.lock (runtime + the
`test` extra, for `make test` and `make demo`) pin every package with `==` and the
hashes of its files, for CPython 3.11 on Linux x86_64; `make lock` writes both.
These tests fail when a lock is stale: a dependency in pyproject.toml that is not
pinned, or pinned outside its range. They read files only, no network.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = ROOT / "requirements.lock"
TEST_LOCK = ROOT / "requirements-test.lock"

# The platform the locks are made for (`make lock` refuses any other): markers of
# pyproject's requirements are evaluated for it, not for whatever runs the tests.
LOCK_PLATFORM = {
    "python_version": "3.11",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
}
HASH = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    line: str
    version: str
    hashes: tuple[str, ...]


def read_lock(path: Path) -> tuple[dict[NormalizedName, Pin], list[str]]:
    """Pins by normalised name, and every other (option) line of a pip requirements file."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    pins: dict[NormalizedName, Pin] = {}
    options: list[str] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            options.append(line)
            continue
        words = line.split()
        hashes = tuple(w.removeprefix("--hash=") for w in words if w.startswith("--hash="))
        requirement = Requirement(" ".join(w for w in words if not w.startswith("--hash=")))
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1, f"{path.name}: not pinned with one ==: {line}"
        (specifier,) = specifiers
        assert specifier.operator == "==", f"{path.name}: not pinned with ==: {line}"
        assert "*" not in specifier.version, f"{path.name}: not one version: {line}"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{path.name}: {name} is pinned twice"
        pins[name] = Pin(line=line, version=specifier.version, hashes=hashes)
    return pins, options


def project() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        table: dict[str, Any] = tomllib.load(f)["project"]
    return table


def declared(lock: Path) -> list[Requirement]:
    """What pyproject.toml asks of that lock: runtime dependencies, plus the test extra."""
    table = project()
    lines = list(table["dependencies"])
    if lock == TEST_LOCK:
        lines += table["optional-dependencies"]["test"]
    return [Requirement(line) for line in lines]


def applies(requirement: Requirement) -> bool:
    """Whether a requirement's marker holds on the lock's platform (the rest as here)."""
    return requirement.marker is None or requirement.marker.evaluate(LOCK_PLATFORM)


LOCKS = [pytest.param(RUNTIME_LOCK, id="runtime"), pytest.param(TEST_LOCK, id="test")]


@pytest.mark.parametrize("lock", LOCKS)
def test_every_dependency_in_pyproject_is_pinned_inside_its_range(lock: Path) -> None:
    """Each requirement of pyproject (for this lock) is pinned with == and a hash, in range."""
    pins, _ = read_lock(lock)
    stale = []
    for requirement in declared(lock):
        if not applies(requirement):
            continue
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            stale.append(f"{requirement}: not in {lock.name}")
        elif not pin.hashes:
            stale.append(f"{requirement}: pinned without --hash in {lock.name}")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            stale.append(f"{requirement}: {lock.name} pins {pin.version}")
    assert not stale, "the lock is stale, run `make lock`:\n" + "\n".join(stale)


@pytest.mark.parametrize("lock", LOCKS)
def test_every_line_is_a_hashed_pin_and_nothing_names_an_index(lock: Path) -> None:
    """`pip install --require-hashes` takes every line; no index, host or path is written down."""
    pins, options = read_lock(lock)
    assert pins
    assert options == []  # no --index-url, --find-links, --trusted-host, -e, -r, -c
    for name, pin in pins.items():
        assert pin.hashes, f"{name} has no --hash"
        for digest in pin.hashes:
            assert HASH.fullmatch(digest), f"{name}: {digest}"
    text = lock.read_text(encoding="utf-8")
    assert "://" not in text
    assert "pip-compile with Python 3.11" in text
    assert "#    make lock\n" in text  # how to regenerate it, in its header


def test_runtime_lock_pins_the_versions_the_tests_run_with() -> None:
    """Every package of requirements.lock has the same version and hashes in the test lock."""
    runtime, _ = read_lock(RUNTIME_LOCK)
    test, _ = read_lock(TEST_LOCK)
    assert runtime.keys() <= test.keys(), sorted(runtime.keys() - test.keys())
    differ = [name for name, pin in runtime.items() if pin != test[name]]
    assert not differ, f"run `make lock`; pinned differently: {differ}"


def test_make_and_the_container_install_from_the_locks() -> None:
    """The venv rule and the Containerfile install hash-checked from the lock, then --no-deps."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    rule = re.search(r"^\$\(STAMP\):(.*)\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert rule is not None
    prerequisites, recipe = rule.group(1).split(), rule.group(2)
    assert {"pyproject.toml", "requirements-test.lock"} <= set(prerequisites)
    assert "--require-hashes -r requirements-test.lock" in recipe
    assert "--no-deps -e ." in recipe
    assert re.search(r"^lock:", makefile, re.MULTILINE)

    containerfile = re.sub(
        r"\\\n", " ", (ROOT / "deploy" / "Containerfile").read_text(encoding="utf-8")
    )
    commands = [
        command.strip()
        for line in containerfile.splitlines()
        if line.startswith("RUN ")
        for command in line.removeprefix("RUN ").split("&&")
    ]
    installs = [command for command in commands if "pip install" in command]
    assert any("--require-hashes -r requirements.lock" in command for command in installs)
    # Anything else pip installs (the project) brings no dependency of its own.
    others = [command for command in installs if "-r requirements.lock" not in command]
    assert others
    assert all("--no-deps" in command for command in others), others
