"""Headless Chromium for the browser tests: one page that records what it fetched and
every console error or warning and page error, so a test can assert there were none;
and axe-core's accessibility check of the page it shows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from playwright.async_api import ConsoleMessage, Error, Page, Request, async_playwright

CHROMIUM = "/usr/bin/chromium"
# Installed by `make system-deps` (pinned version and hash, see the Makefile).
AXE_JS = Path(__file__).resolve().parent.parent / ".cache/axe/node_modules/axe-core/axe.min.js"
# The impacts a page must not have; "moderate" and "minor" are advice.
AXE_FAILING = ("serious", "critical")
# No sandbox (containers), and nothing that would talk to the network on its own,
# so every request a test sees comes from the page under test.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass(frozen=True)
class Recording:
    """What a page did: every request URL, and every console error/warning or page error."""

    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@asynccontextmanager
async def recorded_page(width: int, height: int = 900) -> AsyncIterator[tuple[Page, Recording]]:
    """A fresh Chromium page of the given viewport and its recording; closed on exit."""
    recording = Recording()

    # Plain functions, not methods of the frozen Recording: Playwright sets an
    # attribute on each handler it registers.
    def on_request(request: Request) -> None:
        recording.requests.append(request.url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            where = message.location.get("url")
            recording.problems.append(f"{message.type}: {message.text} at {where}")

    def on_page_error(error: Error) -> None:
        recording.problems.append(f"pageerror: {error}")

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": height})
            page.on("request", on_request)
            page.on("console", on_console)
            page.on("pageerror", on_page_error)
            yield page, recording
        finally:
            await browser.close()


@cache
def _axe_source() -> str:
    if not AXE_JS.is_file():
        raise FileNotFoundError(f"{AXE_JS} is missing: `make system-deps` installs axe-core")
    return AXE_JS.read_text(encoding="utf-8")


@dataclass(frozen=True)
class AxeViolation:
    """One axe-core rule the page breaks, with where (CSS selectors of the first nodes)."""

    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.rule} ({self.impact}): {self.help} at {', '.join(self.targets)}"


async def axe_violations(page: Page) -> list[AxeViolation]:
    """axe-core's violations of impact serious or critical on the page as it is now.

    axe's source is run through Playwright's `evaluate`, which the browser runs
    through its DevTools protocol, outside the page's Content-Security-Policy
    (which forbids every script). The page keeps its real CSP: nothing is relaxed
    for the test (no `bypass_csp`), so a CSP violation by the page itself would
    still show in the recording's console errors. axe only reads the page.
    """
    await page.evaluate(_axe_source())
    found: list[dict[str, Any]] = await page.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return result.violations.map(v => ({
                rule: v.id, impact: v.impact || "", help: v.help,
                targets: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
            }));
        }"""
    )
    return [
        AxeViolation(v["rule"], v["impact"], v["help"], tuple(v["targets"]))
        for v in found
        if v["impact"] in AXE_FAILING
    ]
