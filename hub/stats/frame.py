"""What every dashboard view shares: the session check, the period, the navigation,
German error pages and the rendering.

A view is an async function `(request, frame) -> str` of the page's HTML,
registered with `add_view(app, name, path, view)`. The wrapper here does, for
every view alike:

* no session: a redirect to the login page that remembers where the
  coordinator wanted to go (path and query), so `?period=` survives the login;
* the period from `?period=` (default: the newest period with a report), or a
  German error page (400) when the value is not a period;
* a `Problem` raised below (a scope outside the coordinator's offices, a period
  not yet published) becomes a German page with the same status, never the
  API's English JSON.

`Frame` is what the surrounding page (`templates/frame.html`: header,
navigation, period choice, the print footer) needs; views add their own
context. Every view renders through `render`, so every page has the same
header, navigation and print footer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from hub.context import DEPS, SETTINGS
from hub.errors import Problem
from hub.stats import pages, view
from hub.stats.access import Coordinator, optional_coordinator
from hub.stats.errors import StatsError
from hub.stats.periods import Period, parse_period, previous_closed
from protocol.hub_api import ProblemKind

LOGIN = "/dashboard/login"

# (name, path, German label): the navigation, in this order, on every page.
NAV: tuple[tuple[str, str, str], ...] = (
    ("overview", "/dashboard", "Überblick"),
    ("trends", "/dashboard/trends", "Verlauf"),
    ("areas", "/dashboard/areas", "Gebiete"),
    ("referrals", "/dashboard/referrals", "Verweisungen"),
    ("table", "/dashboard/table", "Tabellen"),
)
PATHS = frozenset(path for _, path, _ in NAV)
# A longer `next` query is no view's choice (they take a few short fields): dropped.
MAX_NEXT_QUERY = 2000

# German text for the problems a view may raise; anything else is a generic line.
_PROBLEM_TEXT = {
    ProblemKind.NOT_FOUND: (
        "Diese Auswahl gehört nicht zu den Beratungsstellen, die Sie sehen dürfen."
    ),
    ProblemKind.MALFORMED: "Diese Auswahl ist ungültig.",
    ProblemKind.NOT_PUBLISHED: (
        "Die Zahlen dieses Zeitraums werden erst nach Ablauf der Meldefrist veröffentlicht."
    ),
}


class PageError(Exception):
    """A German message for the coordinator, shown as a page with this status."""

    def __init__(self, text: str, status: int = 400) -> None:
        super().__init__(text)
        self.text = text
        self.status = status


@dataclass(frozen=True)
class Frame:
    """The coordinator, the chosen period and where this page sits in the navigation."""

    who: Coordinator
    region: str
    period: Period
    periods: Sequence[str]  # choosable periods, newest first
    active: str  # NAV name of this view
    path: str  # this view's path, the period form's target
    data_date: str  # the hub's today, German date: "Stand" on printouts

    @property
    def org(self) -> str | None:
        return self.who.org

    def link(self, path: str, **query: str) -> str:
        """`path` with this period (and `query`) in its query string."""
        return path + "?" + urlencode({"period": self.period.id, **query})

    def nav(self) -> list[tuple[str, str, bool]]:
        """(href, label, current) for every view, keeping the period."""
        return [(self.link(path), label, name == self.active) for name, path, label in NAV]


def html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def error_page(text: str, status: int) -> web.Response:
    return html(pages.message_page(text), status)


def login_redirect(request: web.Request) -> web.Response:
    """To the login page, remembering this view (path and query) for after it; a
    query too long for `safe_next` is not remembered (the view's path is)."""
    after = request.path_qs if len(request.query_string) <= MAX_NEXT_QUERY else request.path
    return see_other(LOGIN + "?" + urlencode({"next": after}))


def safe_next(raw: str | None) -> str:
    """Where to go after logging in: one of the views with its query, else the overview.

    Only the dashboard's own paths, so the login cannot be made to send a
    coordinator to another site (open redirect). The query is decoded and encoded
    again, so the `Location` header and the login form carry only ASCII (no control
    character, no text that is not UTF-8, which the server could not send as a header).
    """
    if not raw:
        return "/dashboard"
    path, _, query = raw.partition("?")
    if path not in PATHS or "\\" in raw or any(c in raw for c in "\r\n"):
        return "/dashboard"
    if len(query) > MAX_NEXT_QUERY:
        return path
    pairs = parse_qsl(query.partition("#")[0], keep_blank_values=True)
    clean = urlencode(pairs, errors="replace")
    return path + ("?" + clean if clean else "")


def _german_period_error(raw: str) -> PageError:
    shown = raw if len(raw) <= 20 else raw[:20] + "…"
    return PageError(
        f"„{shown}“ ist kein Zeitraum. Bitte einen Monat (2026-11), ein Quartal "
        "(2026-Q4) oder ein Jahr (2026) wählen."
    )


def resolve_period(request: web.Request, reported: Sequence[str]) -> Period:
    """`?period=`, else the newest reported period, else the last closed month."""
    raw = request.query.get("period")
    if raw is None:
        return (
            parse_period(reported[0]) if reported else previous_closed("month", view.today(request))
        )
    try:
        return parse_period(raw)
    except StatsError:
        raise _german_period_error(raw) from None


async def make_frame(request: web.Request, who: Coordinator, active: str, path: str) -> Frame:
    reported = await view.reported_periods(request, who)
    period = resolve_period(request, reported)
    zone = ZoneInfo(request.app[SETTINGS].stats.timezone)
    now = datetime.fromtimestamp(request.app[DEPS].clock.now(), zone)
    return Frame(
        who=who,
        region=request.app[SETTINGS].region,
        period=period,
        periods=view.newest_first({*view.choosable(reported, now.date()), period.id}),
        active=active,
        path=path,
        data_date=now.strftime("%d.%m.%Y"),
    )


View = Callable[[web.Request, Frame], Awaitable[str]]


def dashboard_view(
    active: str, path: str, render_view: View
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The request handler of one view: session, period and German errors around it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        who = await optional_coordinator(request)
        if who is None:
            return login_redirect(request)
        try:
            frame = await make_frame(request, who, active, path)
            return html(await render_view(request, frame))
        except PageError as exc:
            return error_page(exc.text, exc.status)
        except Problem as exc:
            text = _PROBLEM_TEXT.get(exc.kind, "Diese Seite kann gerade nicht gezeigt werden.")
            return error_page(text, exc.status)

    return handler


def add_view(app: web.Application, active: str, render_view: View) -> None:
    """Register a view under its NAV path."""
    path = next(p for name, p, _ in NAV if name == active)
    app.router.add_get(path, dashboard_view(active, path, render_view))


def render(template: str, frame: Frame, **context: Any) -> str:
    """A view's page: `template` extends `frame.html` and gets the frame and `context`."""
    return pages.ENV.get_template(template).render(frame=frame, **context)
