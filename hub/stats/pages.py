"""The dashboard's HTML, rendered on the server from `templates/`. German text.

Pure functions of already protected data: they render `ProtectedTable`s,
completeness rows and sites, and never see an unprotected number. No script,
no inline style, no external resource; the one stylesheet is served by the hub.

The templates are autoescaped: every value a page shows is escaped on output,
office and organisation names and the region included. No value is passed as
pre-rendered markup; the charts are drawn by a template too (`chart.html`).
A missing variable is an error (`StrictUndefined`), not an empty string.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence, Sized
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

from hub.stats import labels, languages
from hub.stats.charts import FEW_MARK, Chart, bar_chart
from hub.stats.disclosure import DisclosurePolicy
from hub.stats.view import CompletenessRow, Overview
from hub.storage.sites import Site
from support.templates import environment

CSS_PATH = "/dashboard/dashboard.css"
ICON_PATH = "/dashboard/favicon.svg"


def _number(value: int) -> str:
    return f"{value:,}".replace(",", ".")  # German thousands separator


def _date(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def _code_label(value: str, dim: str) -> str:
    return labels.code(dim, value)


def counted(n: int, one: str, many: str) -> str:
    """`n` and the noun in the right number: `1 Beratungsstelle`, `3 Beratungsstellen`.

    German takes the singular for exactly one only: `0 Beratungsstellen`.
    """
    return f"{_number(n)} {one if n == 1 else many}"


def _count(value: int | Sized, one: str | None = None, many: str | None = None) -> int | str:
    """Filter `count`: `{{ n | count("Beratungsstelle", "Beratungsstellen") }}`.

    Without the nouns it is Jinja's own `count` (the length of a sequence), which
    this name would otherwise hide from every template.
    """
    if one is None or many is None:
        if isinstance(value, int):
            raise TypeError("count: a number needs the singular and the plural noun")
        return len(value)
    if not isinstance(value, int):
        value = len(value)
    return counted(value, one, many)


# Built once per process; templates are read from the package at first use and kept.
ENV = environment("hub.stats")
ENV.globals.update(
    labels=labels, few_mark=FEW_MARK, css_path=CSS_PATH, icon_path=ICON_PATH, counted=counted
)
ENV.filters.update(
    number=_number,
    date=_date,
    code_label=_code_label,
    count=_count,
    # `{{ site.languages | languages }}` -> "Arabisch, Türkisch"; one code: `language`.
    languages=languages.names,
    language=languages.name,
)


@dataclass(frozen=True)
class Page:
    """What the dashboard shows for one period."""

    region: str
    org: str | None
    period: str
    periods: Sequence[str]
    overview: Overview | None  # None: not published yet (before the deadline)
    completeness: Sequence[CompletenessRow]
    deadline: str
    sites: Sequence[Site]
    policy: DisclosurePolicy
    late_revisions: int = 0  # revisions that arrived after the numbers were fixed


def login_page(region: str, error: str | None = None, after: str = "/dashboard") -> str:
    """The login form; `after` (a checked dashboard path) is where it leads."""
    return ENV.get_template("login.html").render(region=region, error=error, after=after)


# Where a notice leads back to: (href, link text).
BACK_TO_DASHBOARD = ("/dashboard", "Zum Überblick")
BACK_TO_LOGIN = ("/dashboard/login", "Zur Anmeldung")


def message_page(text: str, back: tuple[str, str] = BACK_TO_DASHBOARD) -> str:
    """A short German notice with one way back.

    The default is the dashboard: a view's error page (a bad `?period=`, a scope
    the coordinator may not see) is only shown to a logged-in coordinator, and
    without a session `/dashboard` leads to the login page anyway. A notice about
    the login itself leads back to the login form (`BACK_TO_LOGIN`).
    """
    href, label = back
    return ENV.get_template("message.html").render(text=text, back_href=href, back_label=label)


def _charts(overview: Overview) -> list[Chart]:
    out = []
    for t in overview.charts:
        dim = t.spec.rows or ""
        title = f"{labels.measure(t.spec.measure)} nach {labels.dimension(dim)}"
        out.append(bar_chart(t, f"chart-{dim}", title))
    return out


def _summary(rows: Sequence[CompletenessRow]) -> str:
    """How many offices are in which state, e.g. `gemeldet: 2 · fehlt: 1`."""
    counts = Counter(r.status.value for r in rows)
    return " · ".join(
        f"{labels.TIMELINESS[s]}: {counts[s]}"
        for s in ("on_time", "late", "missing", "pending", "open")
        if counts[s]
    )


def _csv_link(path: str, period: str) -> str:
    return f"/coordinator/v1/{path}?" + urlencode({"period": period, "format": "csv"})


def overview_context(page: Page) -> dict[str, Any]:
    """What templates/dashboard.html needs besides the frame (hub/stats/frame.py render)."""
    return {
        "page": page,
        "charts": _charts(page.overview) if page.overview is not None else [],
        "summary": _summary(page.completeness),
        "csv_link": _csv_link("overview", page.period),
        "completeness_link": _csv_link("completeness", page.period),
    }
