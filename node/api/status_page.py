"""GET /status: the German status page for the site administrator.

Server-rendered HTML of `SyncHealth` (node/storage/health.py, the same figures
`mbe-node status` prints): enrollment, hub, push, last sync and error, outbox,
inbox, directory, statistics submissions. No client data, no case or referral
id; every value is escaped. No script and no external resource: the style is
inline and allowed by its hash in the Content-Security-Policy, the icon is a
data: URI, and a meta refresh reloads the page every 30 seconds.

Decision: no token, like /health. The page holds no personal data, the API
listens on 127.0.0.1 unless configured otherwise, and an administrator opens it
in a plain browser, which cannot send a bearer token. A node exposed beyond
loopback must put /status behind its reverse proxy's access rules (docs/node.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from html import escape

from aiohttp import web

from node.api import keys
from node.storage import health as h
from node.storage.health import SyncHealth

REFRESH_SECONDS = 30

STYLE = """
:root{--ink:#1d2733;--muted:#5b6776;--line:#dde3ea;--bg:#f4f6f9;--card:#fff;
--ok:#1f7a4d;--ok-bg:#e6f4ec;--warn:#8a5a00;--warn-bg:#fff4d6;--bad:#a12a2a;--bad-bg:#fbe7e7}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif}
header{background:#1c3d5a;color:#fff;padding:18px 32px}
header p{margin:0;font-size:13px;opacity:.85;letter-spacing:.02em}
header h1{margin:2px 0 0;font-size:22px;font-weight:600}
main{max-width:1080px;margin:0 auto;padding:24px 32px 8px}
.banner{border-radius:8px;padding:12px 16px;margin-bottom:20px;border:1px solid}
.banner strong{display:block;font-size:16px}
.banner ul{margin:6px 0 0;padding-left:20px}
.banner.ok{background:var(--ok-bg);border-color:#b7dfc8;color:var(--ok)}
.banner.warn{background:var(--warn-bg);border-color:#f0d38a;color:var(--warn)}
.banner.bad{background:var(--bad-bg);border-color:#efb9b9;color:var(--bad)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 18px}
section.wide{grid-column:1/-1}
h2{margin:0 0 8px;font-size:15px;font-weight:600;color:#1c3d5a}
dl{display:grid;grid-template-columns:220px 1fr;gap:6px 12px;margin:0}
dt{color:var(--muted)}
dd{margin:0;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
dd.error{font-size:13px;color:var(--bad)}
.sub{color:var(--muted);font-size:13px}
.pill{display:inline-block;border-radius:10px;padding:0 8px;font-size:13px;font-weight:600}
.pill.ok{background:var(--ok-bg);color:var(--ok)}
.pill.warn{background:var(--warn-bg);color:var(--warn)}
.pill.bad{background:var(--bad-bg);color:var(--bad)}
.pill.none{background:#eef1f5;color:var(--muted)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line)}
th{color:var(--muted);font-weight:600;font-size:13px}
td.num{font-variant-numeric:tabular-nums}
footer{max-width:1080px;margin:0 auto;padding:12px 32px 28px;color:var(--muted);font-size:13px}
code{font-size:13px}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
ICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Crect width='16' height='16' rx='3' fill='%231c3d5a'/%3E"
    "%3Ccircle cx='8' cy='8' r='3.5' fill='%23fff'/%3E%3C/svg%3E"
)

SEVERE = frozenset({h.NOT_ENROLLED, h.HUB_UNREACHABLE, h.DIRECTORY_MISSING, h.DIRECTORY_EXPIRED})
WARNINGS_DE = {
    h.NOT_ENROLLED: "Der Knoten ist noch nicht beim Hub eingeschrieben "
    "(<code>mbe-node enroll</code>).",
    h.HUB_UNREACHABLE: "Der Hub ist zurzeit nicht erreichbar; Nachrichten warten im Postausgang.",
    h.DIRECTORY_MISSING: "Es liegt noch kein Verzeichnis der Beratungsstellen vor.",
    h.DIRECTORY_EXPIRED: "Das Verzeichnis der Beratungsstellen ist abgelaufen; "
    "bis zur nächsten Aktualisierung kann nichts versiegelt werden.",
    h.OUTBOX_STUCK: "Eine Nachricht wartet seit über einer Stunde im Postausgang.",
    h.OUTBOX_REJECTED: "Der Hub hat Nachrichten endgültig abgelehnt.",
    h.WITHDRAWALS_PENDING: "Rücknahmen von Vermittlungen konnten noch nicht versiegelt werden; "
    "der Knoten versucht es weiter.",
    h.DELIVERY_FAILED: "Nachrichten sind unzugestellt abgelaufen und konnten nicht erneut "
    "gesendet werden (die Empfängerstelle ist nicht mehr aktiv).",
    h.STATS_REJECTED: "Der Hub hat eine Statistikmeldung abgelehnt.",
    h.LAST_ERROR: "Die letzte Synchronisation meldete einen Fehler.",
}
STATS_STATES_DE = {"submitted": "übermittelt", "pending": "ausstehend", "rejected": "abgelehnt"}
_STATS_PILL = {"submitted": "ok", "pending": "warn", "rejected": "bad"}


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


def _pill(kind: str, text: str) -> str:
    return f'<span class="pill {kind}">{escape(text)}</span>'


def _yes_no(value: bool | None, yes: str, no: str, unknown: str) -> str:
    if value is None:
        return _pill("none", unknown)
    return _pill("ok", yes) if value else _pill("bad", no)


def _row(label: str, value: str, key: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f'<dt>{escape(label)}</dt><dd data-figure="{key}"{cls}>{value}</dd>'


def _count(n: int, one: str, many: str) -> str:
    return escape(f"{n} {one if n == 1 else many}")


def _banner(health: SyncHealth) -> str:
    found = health.warnings()
    if not found:
        return (
            '<div class="banner ok" role="status"><strong>Alles in Ordnung</strong>'
            "Der Knoten ist eingeschrieben und synchronisiert mit dem Hub.</div>"
        )
    kind = "bad" if SEVERE & set(found) else "warn"
    title = "Störung" if kind == "bad" else "Bitte prüfen"
    items = "".join(f"<li>{WARNINGS_DE[w]}</li>" for w in found)
    return f'<div class="banner {kind}" role="alert"><strong>{title}</strong><ul>{items}</ul></div>'


def _stats_section(health: SyncHealth, tz: dt.tzinfo | None) -> str:
    if not health.stats:
        body = '<p class="sub">Noch keine Statistik gemeldet.</p>'
    else:
        rows = "".join(
            f"<tr><td>{escape(s.period)}</td><td class='num'>{s.revision}</td>"
            f"<td>{_pill(_STATS_PILL.get(s.state, 'none'), STATS_STATES_DE.get(s.state, s.state))}"
            f"</td><td>{escape(_when(s.submitted_at, tz))}</td></tr>"
            for s in health.stats
        )
        body = (
            '<table id="stats"><thead><tr><th>Zeitraum</th><th>Revision</th><th>Status</th>'
            f"<th>Übermittelt am</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return f'<section class="wide"><h2>Statistikmeldungen (neueste Revision)</h2>{body}</section>'


def render(health: SyncHealth, office: str, tz: dt.tzinfo | None = None) -> str:
    """The whole page; pure, so tests can render it with a fixed clock and zone."""
    now = health.now
    since_sync = f" ({ago(now - health.last_sync)})" if health.last_sync is not None else ""
    oldest = health.oldest_unsent_age
    if health.directory_expires is None:
        valid = "–"
    elif health.directory_expired:
        valid = f"{escape(_when(health.directory_expires, tz))} {_pill('bad', 'abgelaufen')}"
    else:
        left = remaining(health.directory_expires - now)
        valid = f"{escape(_when(health.directory_expires, tz))} ({escape(left)})"
    enrollment = "".join(
        (
            _row("Eingeschrieben", _yes_no(health.enrolled, "ja", "nein", ""), "enrolled"),
            _row("Knoten-ID", escape(health.node_id or "–"), "node_id"),
            _row("Hub", escape(health.hub_url or "–"), "hub_url"),
            _row("Eingeschrieben seit", escape(_when(health.enrolled_at, tz)), "enrolled_at"),
        )
    )
    link = "".join(
        (
            _row(
                "Hub erreichbar",
                _yes_no(health.hub_reachable, "ja", "nein", "noch nicht geprüft"),
                "hub_reachable",
            ),
            _row(
                "Push-Verbindung",
                _yes_no(health.push_connected, "verbunden", "getrennt", "unbekannt"),
                "push_connected",
            ),
            _row(
                "Letzte Synchronisation",
                escape(_when(health.last_sync, tz) + since_sync)
                if health.last_sync is not None
                else "noch nie",
                "last_sync",
            ),
            _row(
                "Letzter Fehler",
                escape(health.last_error or "–"),
                "last_error",
                "error" if health.last_error else "",
            ),
        )
    )
    messages = "".join(
        (
            _row(
                "Postausgang",
                _count(health.outbox_depth, "Nachricht wartet", "Nachrichten warten"),
                "outbox_depth",
            ),
            _row(
                "Älteste ungesendete Nachricht",
                escape(ago(oldest)) if oldest is not None else "–",
                "oldest_unsent",
            ),
            _row("Vom Hub abgelehnt", str(health.outbox_rejected), "outbox_rejected"),
            _row("Offene Rücknahmen", str(health.withdrawals_pending), "withdrawals_pending"),
            _row(
                "Unzugestellt abgelaufen, erneut gesendet",
                str(health.messages_resent),
                "messages_resent",
            ),
            _row(
                "Unzugestellt abgelaufen, nicht zustellbar",
                str(health.delivery_failed),
                "delivery_failed",
            ),
            _row(
                "Eingegangene Vermittlungen ohne Entscheidung",
                str(health.inbox_awaiting),
                "inbox_awaiting",
            ),
            _row("Abgewiesene Nachrichten", str(health.refused_messages), "refused_messages"),
        )
    )
    directory = "".join(
        (
            _row("Version", escape(str(health.directory_version or "–")), "directory_version"),
            _row("Gültig bis", valid, "directory_expires"),
        )
    )
    sections = "".join(
        f'<section id="{sid}"><h2>{escape(title)}</h2><dl>{rows}</dl></section>'
        for sid, title, rows in (
            ("enrollment", "Einschreibung", enrollment),
            ("link", "Verbindung zum Hub", link),
            ("messages", "Nachrichten", messages),
            ("directory", "Verzeichnis der Beratungsstellen", directory),
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="de"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>Synchronisationsstatus · {escape(office)}</title>"
        f'<link rel="icon" href="{ICON}"><style>{STYLE}</style></head><body>'
        "<header><p>mbe-node · Synchronisationsstatus</p>"
        f"<h1>{escape(office)}</h1></header>"
        f"<main>{_banner(health)}<div class='grid'>{sections}"
        f"{_stats_section(health, tz)}</div></main>"
        f"<footer>Stand: {escape(_when(now, tz))} · Die Seite lädt sich alle "
        f"{REFRESH_SECONDS} Sekunden neu. Sie enthält keine personenbezogenen Daten; "
        "dieselben Angaben zeigt <code>mbe-node status</code>.</footer>"
        "</body></html>\n"
    )


async def status_page(request: web.Request) -> web.Response:
    health = request.app[keys.STORE].health()
    html = render(health, request.app[keys.SETTINGS].name)
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=HEADERS)
