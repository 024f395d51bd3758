"""GET /status: the German status page for the site administrator.

Server-rendered HTML of `SyncHealth` (node/storage/health.py, the same figures
`mbe-node status` prints): enrollment, hub, push, last sync and error, outbox,
inbox, directory, statistics submissions. No client data, no case or referral
id. Rendered from `templates/status.html` with autoescaping: every value is
escaped on output. No script and no external resource: the style
(`templates/status.css`) is inline and allowed by its hash in the
Content-Security-Policy, the icon is a data: URI, and a meta refresh reloads
the page every 30 seconds.

Decision: no token, like /health. The page holds no personal data, the API
listens on 127.0.0.1 unless configured otherwise, and an administrator opens it
in a plain browser, which cannot send a bearer token. A node exposed beyond
loopback must put /status behind its reverse proxy's access rules (docs/node.md).
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import NoReturn

from aiohttp import web

from node.api import keys
from node.storage import health as h
from node.storage.health import SyncHealth
from node.storage.retention import DUE_WITHIN_DAYS
from support.templates import environment, inline_style

REFRESH_SECONDS = 30


def _fail(message: str) -> NoReturn:
    """For a template that meets a value it has no text for: an error, not a blank."""
    raise ValueError(message)


# Built once per process; templates are read from the package at first use and kept.
ENV = environment("node.api")
ENV.globals["fail"] = _fail

_STYLE = inline_style("node.api", "templates/status.css", data_images=True)
_STYLE_MARKUP = _STYLE.markup
CSP = _STYLE.headers["Content-Security-Policy"]
HEADERS = _STYLE.headers

SEVERE = frozenset(
    {
        h.NOT_ENROLLED,
        h.HUB_UNREACHABLE,
        h.DIRECTORY_MISSING,
        h.DIRECTORY_EXPIRED,
        h.AUDIT_BROKEN,
        h.CLOCK_SKEW,
    }
)


def _when(ts: int | None, tz: dt.tzinfo | None) -> str:
    if ts is None:
        return "–"
    local = dt.datetime.fromtimestamp(ts, dt.UTC).astimezone(tz)
    return local.strftime("%d.%m.%Y, %H:%M Uhr")


def _span(seconds: int, *, dative: bool) -> str:
    """A duration in German words: dative after "vor", nominative after "noch"."""
    if seconds < 60:
        return "weniger als einer Minute" if dative else "weniger als eine Minute"
    if seconds < 3600:
        n, one, many = seconds // 60, "Minute", "Minuten"
    elif seconds < 2 * 86400:
        n, one, many = seconds // 3600, "Stunde", "Stunden"
    else:
        n, one, many = seconds // 86400, "Tag", "Tagen" if dative else "Tage"
    return f"{n} {one if n == 1 else many}"


def ago(seconds: int) -> str:
    return f"vor {_span(max(0, seconds), dative=True)}"


def remaining(seconds: int) -> str:
    return f"noch {_span(max(0, seconds), dative=False)}"


# The worker's last error (English, technical) in a German sentence; the
# technical text is shown below it. The first matching pattern wins.
_ERRORS_DE = (
    ("(clock-skew)", "Die Uhr dieses Servers weicht von der des Hubs ab: Uhrzeit (NTP) prüfen."),
    (
        "storage-full",
        "Der Speicher des Hubs ist voll: ausgehende Nachrichten warten im Postausgang,"
        " eingehende werden weiter zugestellt.",
    ),
    ("is not reachable", "Der Hub ist nicht erreichbar; Nachrichten warten im Postausgang."),
    ("left at the hub", "Eingehende Nachrichten warten am Hub auf einen späteren Durchlauf."),
    ("directory", "Das Verzeichnis der Beratungsstellen vom Hub war nicht verwendbar."),
    ("refused", "Der Hub hat eine Anfrage dieses Knotens abgelehnt."),
    ("internal error", "Interner Fehler im Knoten; Einzelheiten stehen im Protokoll."),
)
# Why an incoming message was refused (the `refused` table's codes), in German.
_REFUSALS_DE = {
    "unknown-referral": "betrifft eine hier unbekannte Verweisung",
    "unknown-message": "betrifft eine hier unbekannte Nachricht",
    "sender-mismatch": "von einer anderen Stelle als der beteiligten",
    "duplicate-referral": "Verweisung war schon eingegangen",
    "erased-before-arrival": "Verweisung war vor ihrem Eintreffen gelöscht worden",
    "bad-receipt": "Löschbestätigung mit ungültiger Signatur",
    "unexpected-type": "Nachrichtentyp wird hier nicht verarbeitet",
    "illegal-transition": "passt nicht zum Stand der Verweisung",
    "not-applicable": "konnte nicht angewendet werden",
}


def clock_de(offset: int) -> str:
    """How far this server's clock is from the hub's, in German words."""
    if offset == 0:
        return "stimmt mit der Uhr des Hubs überein"
    direction = "vor" if offset > 0 else "nach"
    seconds = abs(offset)
    amount = (
        f"{seconds} Sekunde{'' if seconds == 1 else 'n'}"
        if seconds < 120
        else f"{seconds // 60} Minuten"
    )
    return f"geht {amount} {direction} (gegenüber der Uhr des Hubs)"


def error_de(text: str) -> str:
    for needle, sentence in _ERRORS_DE:
        if needle in text:
            return sentence
    return "Fehler bei der Synchronisation."


def refusal_de(reason: str) -> str:
    code = reason.split(":", 1)[0].strip()
    return _REFUSALS_DE.get(code, f"Grund: {code[:60]}")


def render(health: SyncHealth, office: str, tz: dt.tzinfo | None = None) -> str:
    """The whole page; pure, so tests can render it with a fixed clock and zone."""
    found = health.warnings()
    return ENV.get_template("status.html").render(
        health=health,
        office=office,
        warnings=found,
        banner="bad" if SEVERE & set(found) else "warn",
        refresh=REFRESH_SECONDS,
        style=_STYLE_MARKUP,
        when=partial(_when, tz=tz),
        ago=ago,
        remaining=remaining,
        retention_days=DUE_WITHIN_DAYS,
        error_de=error_de,
        clock_de=clock_de,
        refusal_de=refusal_de,
    )


async def status_page(request: web.Request) -> web.Response:
    store = request.app[keys.STORE]
    health = await store.run(store.health, request.app[keys.SETTINGS].retention.years)
    html = render(health, request.app[keys.SETTINGS].name)
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=HEADERS)
