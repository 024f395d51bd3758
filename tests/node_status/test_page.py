"""The status page GET /status, its figures (SyncHealth) and `mbe-node status`, side by side."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from node.api.keys import STORE
from node.api.status_page import CSP, ENV, ago, remaining, render
from node.cli import status_lines
from node.config import NodeSettings
from node.storage import health as h
from node.storage.context import iso
from tests.node.conftest import CASE, T0, ApiNode, consent_for, make_office, open_outbox
from tests.node_status.conftest import Client, health

UTC = dt.UTC
MARKERS = {"given_name": "Zzmarkerfirst", "family_name": "Zzmarkerlast", "phone": "+49 1 2345"}


def _figure(html: str, key: str) -> str:
    match = re.search(rf'<dd data-figure="{key}"[^>]*>(.*?)</dd>', html)
    assert match is not None, key
    return re.sub(r"<[^>]+>", "", match.group(1))


async def test_page_is_public_german_and_locked_down(client: Client) -> None:
    """Without a token: German HTML, meta refresh, strict CSP whose hash fits the inline style."""
    resp = await client.get("/status")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    html = await resp.text()
    assert '<html lang="de">' in html
    assert '<meta http-equiv="refresh" content="30">' in html
    for label in (
        "Synchronisationsstatus",
        "Einschreibung",
        "Hub erreichbar",
        "Push-Verbindung",
        "Letzte Synchronisation",
        "Postausgang",
        "Verweisungen ohne Entscheidung",
        "Verzeichnis der Beratungsstellen",
        "Statistikmeldungen",
    ):
        assert label in html, label
    csp = resp.headers["Content-Security-Policy"]
    assert csp == CSP
    assert csp.startswith("default-src 'none';")
    assert "unsafe-inline" not in csp
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_page_holds_no_client_data_nor_ids(client: Client, api_node: ApiNode) -> None:
    """With cases, referrals out and in: no client value, case, consent or referral id."""
    auth = api_node.auth
    case = await (await client.post("/api/v1/cases", json=CASE | MARKERS, headers=auth)).json()
    fields = ["given_name", "family_name", "phone"]
    consent = await (
        await client.post(
            f"/api/v1/cases/{case['id']}/consents",
            json=consent_for("awo-fue", fields),
            headers=auth,
        )
    ).json()
    body = {"case_id": case["id"], "recipient": "awo-fue", "target_type": "mbe", "fields": fields}
    out = await (await client.post("/api/v1/referrals/outgoing", json=body, headers=auth)).json()
    sender = make_office("awo-fue")
    sender_case = sender.store.cases.create(CASE | MARKERS)
    sender.store.consents.record(sender_case, consent_for("caritas-nbg", fields))
    incoming = sender.store.referrals.create(
        {"case_id": sender_case, "recipient": "caritas-nbg", "target_type": "mbe", "fields": fields}
    )
    store = client.app[STORE]
    for inner in open_outbox(sender, make_office("caritas-nbg", enrolled=False)):
        await store.run(store.sync.apply_incoming, inner, T0)

    html = await (await client.get("/status")).text()
    assert _figure(html, "inbox_awaiting") == "1"
    assert _figure(html, "outbox_depth") == "2 Nachrichten warten"  # offer and receipt
    secrets = [*MARKERS.values(), "Haddad", "Amina", case["id"], consent["id"], out["id"]]
    secrets += [incoming.referral_id, sender_case]
    assert [s for s in secrets if s in html] == []


def test_page_and_cli_show_the_same_figures() -> None:
    """Both views render one SyncHealth: every count on the page is the CLI's too."""
    figures = health(withdrawals_pending=2, outbox_rejected=4, messages_resent=6, delivery_failed=1)
    page = render(figures, "Caritas Nürnberg", UTC)
    cli = dict(status_lines(NodeSettings(data_dir=Path(".")), figures))
    assert _figure(page, "outbox_depth") == "7 Nachrichten warten"
    assert cli["Outbox"].startswith("7 waiting")
    assert _figure(page, "outbox_rejected") == "4"
    assert "4 refused by the hub" in cli["Outbox"]
    assert _figure(page, "inbox_awaiting") == "5"
    assert cli["Inbox"].startswith("5 ")
    assert _figure(page, "refused_messages") == cli["Refused messages"] == "3"
    assert _figure(page, "withdrawals_pending") == "2"
    assert cli["Withdrawals"].startswith("2 ")
    assert (_figure(page, "messages_resent"), _figure(page, "delivery_failed")) == ("6", "1")
    assert cli["Expired undelivered"] == "6 sent again, 1 undeliverable"
    assert "nicht erneut gesendet" in page  # the delivery_failed warning, in German
    assert _figure(page, "directory_version") == "Version 42"
    assert cli["Directory"].startswith("version 42, valid until " + str(iso(T0 + 29 * 86400)))
    assert _figure(page, "node_id") == "caritas-nbg"
    assert cli["Enrolled"].startswith("yes, as caritas-nbg")
    assert _figure(page, "hub_reachable") == "ja"
    assert cli["Hub reachable"] == "yes"
    assert _figure(page, "push_connected") == "verbunden"
    assert cli["Push"] == "connected"
    assert _figure(page, "oldest_unsent") == "vor 5 Minuten"
    assert cli["Statistics"] == "2026-08 rev 2 submitted, 2026-Q2 rev 1 pending"
    assert "2026-08" in page
    assert "übermittelt" in page
    assert "ausstehend" in page


def test_banner_reports_health_in_german() -> None:
    """Healthy: "Alles in Ordnung"; hub down or directory expired: "Störung" with reasons."""
    assert "Alles in Ordnung" in render(health(), "X", UTC)
    down = render(health(hub_reachable=False, last_error="hub unreachable"), "X", UTC)
    assert "Störung" in down
    assert "Der Hub ist zurzeit nicht erreichbar" in down
    expired = render(health(directory_expires=T0 - 60), "X", UTC)
    assert "Das Verzeichnis der Beratungsstellen ist abgelaufen" in expired
    assert "abgelaufen</span>" in expired
    stuck = render(health(oldest_unsent=T0 - 7200), "X", UTC)
    assert "Bitte prüfen" in stuck
    assert "seit über einer Stunde" in stuck
    fresh = render(health(enrolled=False, node_id=None, hub_url=None), "X", UTC)
    assert "noch nicht beim Hub eingeschrieben" in fresh


def test_values_are_escaped() -> None:
    """A hostile error text or office name reaches the page only escaped."""
    page = render(health(last_error="<script>alert(1)</script>"), "<b>Büro</b>", UTC)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;Büro&lt;/b&gt;" in page


def test_every_warning_has_a_german_text() -> None:
    """Each warning code of SyncHealth has its sentence in templates/warnings.html;
    a code without one is an error, not an empty line in the banner."""
    codes = [
        h.NOT_ENROLLED,
        h.HUB_UNREACHABLE,
        h.DIRECTORY_MISSING,
        h.DIRECTORY_EXPIRED,
        h.OUTBOX_STUCK,
        h.OUTBOX_REJECTED,
        h.WITHDRAWALS_PENDING,
        h.DELIVERY_FAILED,
        h.STATS_REJECTED,
        h.LAST_ERROR,
    ]
    banner = ENV.env.from_string('{% from "warnings.html" import warning %}{{ warning(code) }}')
    texts = [banner.render(code=code) for code in codes]
    assert all(t.endswith(".") and code not in t for code, t in zip(codes, texts, strict=True))
    assert len(set(texts)) == len(codes)
    assert texts[0] == (
        "Der Knoten ist noch nicht beim Hub eingeschrieben (<code>mbe-node enroll</code>)."
    )
    with pytest.raises(ValueError, match="no German text"):
        banner.render(code="new_warning")


def test_template_is_autoescaped_and_strict() -> None:
    """Escaping is on, and a variable the caller forgot is an error, not an empty string."""
    assert ENV.env.autoescape is True
    with pytest.raises(UndefinedError):
        ENV.get_template("status.html").render(health=health(), office="X")


def test_german_times() -> None:
    """Durations read as German phrases; times as dd.mm.yyyy, hh:mm Uhr in the given zone."""
    assert ago(30) == "vor weniger als einer Minute"
    assert ago(60) == "vor 1 Minute"
    assert ago(125) == "vor 2 Minuten"
    assert ago(3600) == "vor 1 Stunde"
    assert ago(30 * 3600) == "vor 30 Stunden"
    assert ago(3 * 86400) == "vor 3 Tagen"
    assert remaining(29 * 86400) == "noch 29 Tage"
    page = render(health(), "X", UTC)
    assert _figure(page, "last_sync") == "21.09.2026, 14:11 Uhr (vor 2 Minuten)"
    assert _figure(page, "directory_expires") == "20.10.2026, 14:13 Uhr (noch 29 Tage)"


def test_the_page_says_in_german_what_went_wrong_and_which_messages_were_refused() -> None:
    """No green push next to an unreachable hub; the last error as a German sentence
    (with the technical text); a directory version in unix seconds as a date; the
    refused messages with sender and reason."""
    figures = health(
        hub_reachable=False,
        push_connected=True,
        last_error="the hub refused the request (clock-skew): request time is 600 s off",
        directory_version=T0,
        refused_recent=((T0 - 60, "awo-fuerth", "unknown-referral"),),
    )
    page = render(figures, "Caritas Nürnberg", UTC)
    assert _figure(page, "push_connected") == "getrennt"
    error = _figure(page, "last_error")
    assert error.startswith("Die Uhr dieses Servers weicht von der des Hubs ab")
    assert "clock-skew" in error
    assert _figure(page, "directory_version").endswith(f"Uhr (Version {T0})")
    refused = _figure(page, "refused_messages")
    assert "awo-fuerth" in refused
    assert "betrifft eine hier unbekannte Verweisung" in refused
    cli = dict(status_lines(NodeSettings(data_dir=Path(".")), figures))
    assert cli["Push"] == "disconnected"


def test_a_clock_off_from_the_hubs_is_said_plainly() -> None:
    figures = health(clock_offset=600)
    assert "clock_skew" in figures.warnings()
    page = render(figures, "Caritas Nürnberg", UTC)
    assert _figure(page, "clock_offset") == "geht 10 Minuten vor (gegenüber der Uhr des Hubs)"
    assert "Zeitsynchronisation (NTP) einrichten" in page
    cli = dict(status_lines(NodeSettings(data_dir=Path(".")), figures))
    assert cli["Clock"] == "600 s ahead of the hub (the hub refuses beyond 300 s: set up NTP)"
    calm = health(clock_offset=-2)
    assert "clock_skew" not in calm.warnings()
    assert _figure(render(calm, "X", UTC), "clock_offset").startswith("geht 2 Sekunden nach")


def test_a_full_hub_disk_is_said_in_german() -> None:
    """The worker's error for `507 storage-full` (issue 10, item 8)."""
    text = "the hub at https://hub.example is not available (HTTP 507 storage-full)"
    page = render(health(hub_reachable=False, last_error=text), "X", UTC)
    assert "Der Speicher des Hubs ist voll" in page
