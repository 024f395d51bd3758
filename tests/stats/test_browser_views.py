"""Every dashboard view in headless Chromium: at a desktop's and a phone's width, on
paper (print media), with axe-core's accessibility check, and the login that keeps
the period of whichever view was asked for.

Each view is loaded as the coordinator sees it, through the login, against the
three-office hub of tests/stats/hubside.py. A view still being built renders the
frame (header, navigation, period, print footer), so it is checked all the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Page
from pytest_aiohttp import AiohttpClient, AiohttpServer

from hub.app import create_app
from hub.settings import HubSettings
from hub.stats.frame import NAV
from hub.stats.routes import add_stats
from tests.browser import Recording, axe_violations, recorded_page
from tests.clocks import clocked
from tests.hub.conftest import FakeClock
from tests.stats.hubside import PERIOD, StatsHub, three_offices

pytestmark = pytest.mark.one_engine  # tests/conftest.py

# (file name, path and query) of every page a coordinator can reach. The period is
# named, as the navigation does; the error page is a view asked for a non-period.
VIEWS = [(name, f"{path}?period={PERIOD}") for name, path, _ in NAV]
ERROR = ("error", "/dashboard?period=kaputt")
LOGIN = ("login", "/dashboard/login")
# A phone's width (the narrowest common one is checked too) and a desktop's.
PHONE, NARROW_PHONE, DESKTOP = 400, 360, 1400
# A4 at the 96 dpi Chromium lays print out at (210 x 297 mm), less the page margins
# (dashboard.css @page: 14 mm left, right and top, 16 mm bottom) and the footer's strip
# (13 mm): the window the print test emulates, and the most a chart may take.
PRINT_WIDTH = 794 - 2 * 53
PRINT_HEIGHT = 1123 - 53 - 60 - 49
MIN_SCREENSHOT = 8_000  # bytes: a blank or failed screenshot is smaller


@dataclass(frozen=True)
class Served:
    """The hub under a real HTTP server: its origin and a coordinator's token."""

    origin: str
    token: str


@pytest.fixture
async def served(
    hub_settings: HubSettings,
    hub_clock: FakeClock,
    aiohttp_server: AiohttpServer,
    aiohttp_client: AiohttpClient,
) -> Served:

    app = create_app(hub_settings, deps=clocked(hub_clock), extensions=[add_stats])
    server = await aiohttp_server(app, host="127.0.0.1")
    hub = StatsHub(hub_settings, hub_clock, app, await aiohttp_client(server))
    await three_offices(hub)
    return Served(str(server.make_url("/")).rstrip("/"), hub.token())


async def log_in(page: Page, served: Served) -> None:
    await page.goto(f"{served.origin}/dashboard/login")
    await page.fill("#token", served.token)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{served.origin}/dashboard")


def unexpected(recording: Recording, origin: str) -> list[str]:
    """Console problems, except the one Chromium logs for the error page's own 400.

    (Chromium reports a document answered with an error status as "Failed to load
    resource"; that status is what the error page is for.)
    """
    error_url = origin + ERROR[1]
    return [
        p
        for p in recording.problems
        if not ("status of 400" in p and p.endswith(f" at {error_url}"))
    ]


def foreign(recording: Recording, origin: str) -> list[str]:
    return [u for u in recording.requests if not u.startswith(origin + "/")]


async def overflow(page: Page) -> int:
    """How far the page is wider than the window (0: no horizontal scrolling)."""
    return int(await page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


# The smallest chart label a reader should get, in CSS pixels of the label's box (the
# wide chart scaled to a phone drew 13 px labels at about 7 px, boxes of about 8).
MIN_LABEL_BOX = 12


async def small_chart_labels(page: Page) -> list[str]:
    """Labels of the displayed bar charts whose rendered box is below MIN_LABEL_BOX."""
    found: list[str] = await page.evaluate(
        """(least) => {
            const out = [];
            for (const svg of document.querySelectorAll("svg.chart")) {
                if (getComputedStyle(svg).display === "none") continue;
                for (const t of svg.querySelectorAll(".bar-label")) {
                    const h = t.getBoundingClientRect().height;
                    if (h < least) out.push(`${svg.id}: ${t.textContent} ${h.toFixed(1)} px`);
                }
            }
            return out;
        }""",
        MIN_LABEL_BOX,
    )
    return found


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
async def test_every_view_loads_fits_and_passes_axe(
    served: Served, width: int, tmp_path: Path
) -> None:
    """At a desktop's and a phone's width every view, the login page and an error page
    load with no console error and nothing from another origin; on a phone nothing is
    wider than the window and chart labels stay legible; axe-core finds nothing serious
    or critical; screenshots."""
    failures: list[str] = []
    async with recorded_page(width=width) as (page, recording):

        async def check(name: str, path: str, status: int = 200) -> None:
            response = await page.goto(served.origin + path)
            assert response is not None
            assert (response.status, page.url) == (status, served.origin + path), name
            shot = tmp_path / f"{name}-{width}.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > MIN_SCREENSHOT, shot
            failures.extend(f"{name} at {width} px: axe {v}" for v in await axe_violations(page))
            if width == PHONE:
                for w in (PHONE, NARROW_PHONE):
                    await page.set_viewport_size({"width": w, "height": 900})
                    if (extra := await overflow(page)) > 0:
                        failures.append(f"{name} at {w} px: {extra} px wider than the window")
                    small = await small_chart_labels(page)
                    failures.extend(f"{name} at {w} px: {x}" for x in small)
                await page.set_viewport_size({"width": PHONE, "height": 900})

        await check(*LOGIN)
        await log_in(page, served)
        for name, path in VIEWS:
            await check(name, path)
        await check(*ERROR, status=400)
    assert failures == []
    assert unexpected(recording, served.origin) == []
    assert foreign(recording, served.origin) == []
    assert any(u.endswith("/dashboard/dashboard.css") for u in recording.requests)


async def test_print_shows_content_and_footer_only(served: Served, tmp_path: Path) -> None:
    """On paper every view shows no navigation, form, button or download link; the footer
    with period, region, date of the data and the confidentiality note is on every page
    (fixed); sections, charts and table rows are kept whole, and a chart fits on a page;
    black on white that axe-core finds readable."""
    failures: list[str] = []
    async with recorded_page(width=PRINT_WIDTH, height=PRINT_HEIGHT) as (page, recording):
        await log_in(page, served)
        await page.emulate_media(media="print")
        for name, path in VIEWS:
            await page.goto(served.origin + path)
            for selector in ("header.top", "nav", "form", "button", "select", "a.download"):
                for i, element in enumerate(await page.locator(selector).all()):
                    if await element.is_visible():
                        failures.append(f"{name}: {selector} #{i} is printed")
            footer = page.locator("footer.print-only")
            if not await footer.is_visible():
                failures.append(f"{name}: no print footer")
            text = await footer.inner_text()
            for part in ("Region Köln", "November 2026", "Datenstand", "Vertraulich"):
                if part not in text:
                    failures.append(f"{name}: print footer without {part!r}")
            # Fixed is what repeats it on every printed page.
            position = await footer.evaluate("e => getComputedStyle(e).position")
            if position != "fixed":
                failures.append(f"{name}: print footer is {position}, not fixed")
            # ...and the layout table's <tfoot>, repeated on every page too, keeps its
            # strip free: at least as high as the footer, or the footer covers content.
            space = await page.evaluate(
                """() => [document.querySelector(".print-footer-space"),
                          document.querySelector("footer.print-only")]
                    .map(e => e ? e.getBoundingClientRect().height : 0)"""
            )
            if not space[0] >= space[1] > 0:
                failures.append(f"{name}: footer {space[1]} px high, its space {space[0]} px")
            if (extra := await overflow(page)) > 0:
                failures.append(f"{name}: {extra} px wider than the paper (cut on the right)")
            failures += [f"{name}: {f}" for f in await _print_problems(page)]
            failures += [f"{name}: axe (print) {v}" for v in await axe_violations(page)]
            shot = tmp_path / f"{name}-print.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > MIN_SCREENSHOT, shot
        # The overview as the coordinator's browser prints it: A4 pages, footer on each.
        await page.goto(served.origin + VIEWS[0][1])
        pdf = tmp_path / "overview.pdf"
        await page.pdf(path=str(pdf), prefer_css_page_size=True)
        assert pdf.stat().st_size > 20_000
    assert failures == []
    assert unexpected(recording, served.origin) == []
    assert foreign(recording, served.origin) == []


async def _print_problems(page: Page) -> list[str]:
    """What would spoil the paper: a section, figure, chart or table row that may break
    across pages, a chart wider or taller than a printed page, and text (also a chart's
    SVG text, which axe does not check) lighter than 4.5:1 on the white paper."""
    found: list[str] = await page.evaluate(
        r"""([width, height]) => {
            const out = [];
            const selectors = "main section, main figure, main svg.chart, main tr";
            for (const e of document.querySelectorAll(selectors)) {
                const s = getComputedStyle(e);
                if (s.display === "none") continue;
                if (s.breakInside !== "avoid") {
                    out.push(`${e.tagName.toLowerCase()} may be cut (${s.breakInside})`);
                }
            }
            for (const c of document.querySelectorAll("main svg.chart")) {
                const r = c.getBoundingClientRect();
                if (r.width > width || r.height > height) {
                    out.push(`chart ${c.id} is ${Math.round(r.width)}x${Math.round(r.height)}`);
                }
            }
            // WCAG relative luminance of an rgb() colour; contrast against white.
            const contrast = (colour) => {
                const [r, g, b] = colour.match(/[\d.]+/g).slice(0, 3).map(v => {
                    const c = v / 255;
                    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
                });
                return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05);
            };
            const body = getComputedStyle(document.body);
            if (body.backgroundColor !== "rgb(255, 255, 255)" || body.color !== "rgb(0, 0, 0)") {
                out.push(`page is ${body.color} on ${body.backgroundColor}, not black on white`);
            }
            const texts = [...document.querySelectorAll("main *, footer.print-only")].filter(
                e => e.getClientRects().length && [...e.childNodes].some(
                    n => n.nodeType === Node.TEXT_NODE && n.textContent.trim()));
            for (const e of texts) {
                const s = getComputedStyle(e);
                const colour = e instanceof SVGElement ? s.fill : s.color;
                if (colour.startsWith("rgb") && contrast(colour) < 4.5) {
                    const what = e.tagName.toLowerCase() + (e.className.baseVal !== undefined
                        ? "." + e.className.baseVal : e.className ? "." + e.className : "");
                    out.push(`${what} is ${colour} on white (${contrast(colour).toFixed(1)}:1)`);
                }
            }
            return [...new Set(out)];
        }""",
        [PRINT_WIDTH, PRINT_HEIGHT],
    )
    return found


async def test_login_keeps_the_period_of_every_view(served: Served) -> None:
    """A coordinator sent to the login from any view with ?period= comes back to that
    view and that period (a period other than the default, so losing it would show)."""
    other = "2026-10"  # published (deadline passed), no report: not the default period
    async with recorded_page(width=DESKTOP) as (page, recording):
        for _, path, _ in NAV:
            wanted = f"{served.origin}{path}?period={other}"
            await page.goto(wanted)
            assert page.url == (
                f"{served.origin}/dashboard/login?next={quote(f'{path}?period={other}', safe='')}"
            )
            await page.fill("#token", served.token)
            await page.click("button[type=submit]")
            await page.wait_for_url(wanted)
            assert await page.locator("#period").input_value() == other
            assert "Oktober 2026" in await page.locator("main h1").inner_text()
            await page.click("form.logout button")
            await page.wait_for_url(f"{served.origin}/dashboard/login")
    assert unexpected(recording, served.origin) == []
    assert foreign(recording, served.origin) == []
