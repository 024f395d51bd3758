"""The dashboard's HTML, rendered on the server. German text; every value escaped.

Pure functions of already protected data: they render `ProtectedTable`s,
completeness rows and sites, and never see an unprotected number. No script,
no inline style, no external resource; the one stylesheet is served by the hub.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

from hub.stats import labels
from hub.stats.charts import FEW_MARK, bar_chart
from hub.stats.disclosure import DisclosurePolicy, Entry
from hub.stats.view import CompletenessRow, Overview
from hub.storage.sites import Site

CSS_PATH = "/dashboard/dashboard.css"
ICON_PATH = "/dashboard/favicon.svg"


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


def _layout(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="de"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="same-origin">'
        f"<title>{escape(title)}</title>"
        f'<link rel="stylesheet" href="{CSS_PATH}">'
        # Named here so the browser does not ask for /favicon.ico (a 404 in its console).
        f'<link rel="icon" href="{ICON_PATH}" type="image/svg+xml"></head>'
        f"<body>{body}</body></html>\n"
    )


def login_page(region: str, error: str | None = None) -> str:
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        '<main class="login"><h1>MBE-Statistik</h1>'
        f'<p class="sub">Koordination · {escape(region)}</p>'
        f"{message}"
        '<form method="post" action="/dashboard/login">'
        '<label for="token">Zugangs-Token</label>'
        '<input id="token" name="token" type="password" autocomplete="off" '
        'spellcheck="false" required placeholder="mbeh_…">'
        '<button type="submit">Anmelden</button></form>'
        '<p class="hint">Den Token erhalten Sie vom Betrieb des Hubs '
        "(<code>mbe-hub token create --role coordinator</code>). "
        "Die Anmeldung gilt für diese Sitzung; sie endet mit der Abmeldung.</p>"
        "</main>"
    )
    return _layout("Anmeldung · MBE-Statistik", body)


def message_page(text: str) -> str:
    """A short German notice with a way back to the login page."""
    body = (
        f'<main class="login"><h1>MBE-Statistik</h1><p class="error" role="alert">'
        f'{escape(text)}</p><p><a href="/dashboard/login">Zur Anmeldung</a></p></main>'
    )
    return _layout("MBE-Statistik", body)


def _number(entry: Entry) -> str:
    few = (
        f'<sup class="few" title="aus wenigen Beratungsstellen">{FEW_MARK}</sup>'
        if entry.few_offices
        else ""
    )
    value = f"{entry.value:,}".replace(",", ".")  # German thousands separator
    return f'<span class="value">{value}</span>{few}'


def _figures(overview: Overview) -> str:
    cards = []
    for t in overview.figures:
        cards.append(
            f'<div class="figure" data-measure="{escape(t.spec.measure)}">'
            f'<div class="figure-label">{escape(labels.measure(t.spec.measure))}</div>'
            f'<div class="figure-value">{_number(t.total)}</div></div>'
        )
    return f'<div class="figures">{"".join(cards)}</div>'


def _charts(overview: Overview) -> str:
    out = []
    for t in overview.charts:
        dim = t.spec.rows or ""
        title = f"{labels.measure(t.spec.measure)} nach {labels.dimension(dim)}"
        out.append(
            f'<figure class="chart-box"><figcaption>{escape(title)}</figcaption>'
            f"{bar_chart(t, f'chart-{dim}', title)}</figure>"
        )
    return f'<div class="charts">{"".join(out)}</div>'


def _completeness(page: Page) -> str:
    counts = Counter(r.status.value for r in page.completeness)
    summary = " · ".join(
        f"{labels.TIMELINESS[s]}: {counts[s]}"
        for s in ("on_time", "late", "missing", "pending", "open")
        if counts[s]
    )
    rows = "".join(
        f'<tr data-office="{escape(r.office)}"><td>{escape(r.name)}</td><td>{escape(r.org)}</td>'
        f'<td><span class="status status-{r.status.value}">'
        f"{escape(labels.TIMELINESS[r.status.value])}</span></td>"
        f"<td>{r.first_received.strftime('%d.%m.%Y') if r.first_received else '–'}</td>"
        f"<td>{r.revision if r.revision is not None else '–'}</td></tr>"
        for r in page.completeness
    )
    if not rows:
        rows = '<tr><td colspan="5">Keine Beratungsstelle erwartet.</td></tr>'
    late = (
        f'<p class="note" id="late-revisions">Nach der Veröffentlichung eingegangene '
        f"Korrekturen: {page.late_revisions}. Sie ändern die veröffentlichten Zahlen "
        "nicht; Nachträge zählen im nächsten noch offenen Zeitraum.</p>"
        if page.late_revisions
        else ""
    )
    return (
        f'<p class="sub">Frist: {escape(page.deadline)}'
        f"{' · ' + escape(summary) if summary else ''}</p>{late}"
        '<table id="completeness" class="grid"><thead><tr><th>Beratungsstelle</th>'
        "<th>Träger</th><th>Status</th><th>Erste Meldung</th><th>Revision</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _list(codes: Iterable[str], dim: str) -> str:
    return ", ".join(escape(labels.code(dim, c)) for c in codes) or "–"


def _directory(page: Page) -> str:
    rows = "".join(
        f'<tr data-office="{escape(s.node_id)}"><td>{escape(s.name)}</td><td>{escape(s.org)}</td>'
        f"<td>{escape(s.area) or '–'}</td><td>{_list(s.services, 'target')}</td>"
        f"<td>{escape(', '.join(s.languages)) or '–'}</td>"
        f"<td>{escape(labels.SITE_STATUS.get(s.status, s.status))}</td></tr>"
        for s in page.sites
    )
    if not rows:
        rows = '<tr><td colspan="6">Noch keine Beratungsstelle eingetragen.</td></tr>'
    return (
        '<table id="directory" class="grid"><thead><tr><th>Beratungsstelle</th><th>Träger</th>'
        "<th>Gebiet</th><th>Angebote</th><th>Sprachen</th><th>Status</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _selector(page: Page) -> str:
    options = "".join(
        f'<option value="{escape(p)}"{" selected" if p == page.period else ""}>'
        f"{escape(labels.period(p))}</option>"
        for p in page.periods
    )
    return (
        '<form class="period" method="get" action="/dashboard">'
        '<label for="period">Zeitraum</label>'
        f'<select id="period" name="period">{options}</select>'
        '<button type="submit">Anzeigen</button></form>'
    )


def dashboard_page(page: Page) -> str:
    who = f"Träger {page.org}" if page.org else "alle Träger"
    csv_link = "/coordinator/v1/overview?" + urlencode({"period": page.period, "format": "csv"})
    comp_link = "/coordinator/v1/completeness?" + urlencode(
        {"period": page.period, "format": "csv"}
    )
    params, n = page.policy.params, page.policy.min_offices
    if page.overview is None:
        numbers = (
            f'<section id="provisional"><h2>Vorläufig · {escape(labels.period(page.period))}'
            '</h2><p class="note">Die Zahlen dieses Zeitraums werden einmal veröffentlicht, '
            f"nach Ablauf der Meldefrist am {escape(page.deadline)}. Bis dahin ist nur der "
            "Meldestand zu sehen.</p></section>"
        )
        download = ""
    else:
        numbers = (
            f"<section><h2>Überblick · {escape(labels.period(page.period))}</h2>"
            f'<p class="sub">Meldungen von {page.overview.figures[0].reporting_offices} '
            "Beratungsstellen</p>"
            f"{_figures(page.overview)}</section>"
            f"<section><h2>Aktive Fälle nach Thema und Aufenthaltsstatus</h2>"
            f"{_charts(page.overview)}"
            '<p class="note">Ein Fall kann mehrere Themen haben; die Werte nach Thema ergeben '
            "zusammen daher mehr als die Gesamtzahl.</p></section>"
        )
        download = f'<a class="download" href="{escape(csv_link)}">CSV herunterladen</a>'
    body = (
        '<header class="top"><div><h1>MBE-Statistik</h1>'
        f'<p class="sub">{escape(page.region)} · Koordination: {escape(who)}</p></div>'
        '<form method="post" action="/dashboard/logout">'
        '<button type="submit" class="secondary">Abmelden</button></form></header>'
        f'<nav class="toolbar">{_selector(page)}{download}'
        f'<a class="download" href="{escape(comp_link)}">Meldestand als CSV</a></nav>'
        f"<main>{numbers}"
        f"<section><h2>Meldestand</h2>{_completeness(page)}</section>"
        f"<section><h2>Beratungsstellen</h2>{_directory(page)}</section>"
        '<section class="legend" id="privacy"><h2>Hinweise zum Datenschutz</h2><p>'
        "Zum Schutz der Vertraulichkeit sind alle Zahlen leicht verändert (Überlagerung "
        "wie beim Zensus 2022): Jede Zahl weicht um höchstens "
        f"{params.max_noise} vom wahren Wert ab, Werte von 1 bis {params.js} werden nie "
        "gezeigt, und eine 0 kann auch für sehr wenige Fälle stehen. Dieselbe Zahl ist in "
        "jeder Tabelle gleich; die Summe von Teilwerten kann aber von der Gesamtzahl "
        f"abweichen. <strong>{FEW_MARK}</strong>: aus weniger als {n} Beratungsstellen."
        "</p></section>"
        "</main>"
    )
    return _layout(f"MBE-Statistik · {labels.period(page.period)}", body)
