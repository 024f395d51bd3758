"""Headless Chromium for the browser tests: one page that records what it fetched and
every console error or warning and page error, so a test can assert there were none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from playwright.async_api import ConsoleMessage, Error, Page, Request, async_playwright

CHROMIUM = "/usr/bin/chromium"
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
