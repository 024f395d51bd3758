"""The client's access export: every stored column, the German document, 404/410, audit."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from node.api import labels
from node.api.export_page import PROVISIONS, RIGHTS, render
from node.api.keys import STORE
from node.errors import Gone, NotFound
from node.storage.export import COLUMNS, EXPORT_ACTION, NOT_EXPORTED, client_export
from protocol import codes
from protocol.payloads import CLIENT_FIELDS
from tests.node.conftest import CASE, ApiNode, Office, consent_for, deliver

Client = TestClient[web.Request, web.Application]
API = "/api/v1"
# Values that must never appear in an error text.
PERSONAL = ("Amina", "Haddad", "+49 911", "Wohnungssuche", "K-2026-001")


def _full_case(office: Office) -> str:
    """A case with a value in every column, a contact, an agreement, a consent and a
    referral to awo-fue."""
    case_id = office.store.cases.create(
        CASE | {"email": "amina@example.org", "address": "Hauptstraße 1, 90402 Nürnberg"}
    )
    office.store.cases.add_contact(
        case_id, {"date": "2026-09-03", "channel": "video", "minutes": 30, "topics": ["health"]}
    )
    office.store.cases.add_agreement(
        case_id,
        "2026-09-04",
        [{"goal": "Arbeit finden", "measure": "Bewerbungstraining", "status": "open"}],
    )
    office.store.consents.record(
        case_id, consent_for("awo-fue", ["given_name", "topics", "note"], expires="2027-09-01")
    )
    office.store.referrals.create(
        {
            "case_id": case_id,
            "recipient": "awo-fue",
            "target_type": "mbe",
            "fields": ["given_name", "topics", "note"],
            "note": "Bitte um Termin",
        }
    )
    return case_id


def _export(office: Office, case_id: str, years: int = 3) -> dict[str, Any]:
    return client_export(office.store.ctx, case_id, retention_years=years, office_name="Caritas")


# ------------------------------------------------------------- every column


@pytest.mark.parametrize("table", sorted(COLUMNS))
def test_every_column_of_a_client_table_is_exported_or_excluded_with_a_reason(
    office_a: Office, table: str
) -> None:
    """A column added to a client table fails here until the export shows it or
    NOT_EXPORTED says why it does not (node/storage/export.py)."""
    stored = {r["name"] for r in office_a.store.ctx.all(f"PRAGMA table_info({table})")}
    exported, excluded = set(COLUMNS[table]), set(NOT_EXPORTED[table])
    assert not exported & excluded
    assert stored - exported - excluded == set(), "not exported and no reason given"
    assert exported | excluded <= stored, "export names a column the table does not have"
    assert all(reason.strip() for reason in NOT_EXPORTED[table].values())


def test_the_client_tables_are_all_checked() -> None:
    assert (
        set(COLUMNS)
        == set(NOT_EXPORTED)
        == {
            "cases",
            "contacts",
            "agreements",
            "consents",
            "referrals",
            "referral_events",
            "audit",
        }
    )


def test_export_shows_every_stored_value(office_a: Office, office_b: Office) -> None:
    case_id = _full_case(office_a)
    deliver(office_a, office_b)  # the receipt: a second event in the history
    deliver(office_b, office_a)
    export = _export(office_a, case_id)
    row = office_a.store.ctx.one("SELECT * FROM cases WHERE id = ?", (case_id,))
    assert row is not None
    case = export["case"]
    assert list(case) == list(COLUMNS["cases"])
    for name in COLUMNS["cases"]:
        stored = row[name]
        shown = case[name]
        if name in {"languages", "topics"}:
            assert shown == json.loads(stored)
        elif name in {"created", "updated"}:
            assert shown.endswith("Z")
        else:
            assert shown == stored, name
    assert case["email"] == "amina@example.org"
    for table, key in (("contacts", "contacts"), ("agreements", "agreements")):
        (item,) = export[key]
        assert set(COLUMNS[table]) <= set(item)
    (consent,) = export["consents"]
    assert set(COLUMNS["consents"]) <= set(consent)
    assert consent["recipient_name"] == "AWO Fürth"
    assert consent["expires"] == "2027-09-01"
    (ref,) = export["referrals"]
    assert set(COLUMNS["referrals"]) <= set(ref)
    assert ref["direction"] == "out"
    assert ref["peer_name"] == "AWO Fürth"
    assert ref["fields"] == ["given_name", "topics", "note"]
    assert ref["note"] == "Bitte um Termin"
    assert [e["event"] for e in ref["history"]] == ["send", "receipt"]
    assert all(set(e) == set(COLUMNS["referral_events"]) for e in ref["history"])
    assert export["office"] == {"name": "Caritas", "node_id": "caritas-nbg"}


def test_the_receiving_office_exports_the_incoming_referral(
    office_a: Office, office_b: Office
) -> None:
    _full_case(office_a)
    deliver(office_a, office_b)
    (incoming,) = office_b.store.referrals.list_referrals("in")  # type: ignore[arg-type]
    accepted = office_b.store.referrals.accept(incoming.referral_id)
    assert accepted.case_id is not None
    export = _export(office_b, accepted.case_id)
    assert export["case"]["given_name"] == "Amina"
    assert export["case"]["origin_referral"] == incoming.referral_id
    (ref,) = export["referrals"]
    assert ref["direction"] == "in"
    assert ref["peer"] == "caritas-nbg"
    assert ref["consent"]["regime"] == "gdpr"  # the consent it travelled with
    assert [e["event"] for e in ref["history"]] == ["receive", "accept"]


# ------------------------------------------------------ retention, regime


def test_retention_open_closed_and_held(office_a: Office) -> None:
    case_id = office_a.store.cases.create(CASE | {"opened": "2023-02-01"})
    assert _export(office_a, case_id)["retention"] == {
        "status": "open",
        "years": 3,
        "erase_on": None,
        "hold": None,
    }
    office_a.store.cases.close(case_id, "goals_achieved", "2023-05-10")
    retention = _export(office_a, case_id)["retention"]
    assert retention["status"] == "scheduled"
    assert retention["erase_on"] == "2027-01-01"
    office_a.store.ctx.run(
        "INSERT INTO retention_holds (case_id, reason, since) VALUES (?, 'legal_claim', ?)",
        (case_id, office_a.clock.t),
    )
    retention = _export(office_a, case_id, years=5)["retention"]
    assert retention["status"] == "held"
    assert retention["erase_on"] == "2029-01-01"
    assert retention["hold"]["reason"] == "legal_claim"


def test_legal_regime_from_the_consents_else_gdpr(office_a: Office) -> None:
    case_id = office_a.store.cases.create(CASE)
    assert _export(office_a, case_id)["legal_regime"] == {"code": "gdpr", "source": "default"}
    assert "die DSGVO gilt allgemein" in render(_export(office_a, case_id), "Caritas")
    office_a.store.consents.record(case_id, consent_for("awo-fue", ["topics"], legal_regime="kdg"))
    assert _export(office_a, case_id)["legal_regime"] == {"code": "kdg", "source": "consents"}
    html = render(_export(office_a, case_id), "Caritas")
    assert "Gesetz über den Kirchlichen Datenschutz" in html
    assert "die DSGVO gilt allgemein" not in html


# --------------------------------------------------------------- the document


class _Text(HTMLParser):
    """Headings and table cells of a document, as text."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.rows: list[list[str]] = []
        self.text: list[str] = []
        self._tag: str | None = None
        self.lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.lang = dict(attrs).get("lang")
        if tag == "tr":
            self.rows.append([])
        if tag in {"h1", "h2", "h3", "td", "th"}:
            self._tag = tag
            if tag in {"td", "th"} and self.rows:
                self.rows[-1].append("")
            else:
                self.headings.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._tag:
            self._tag = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._tag in {"h1", "h2", "h3"}:
            self.headings[-1] += data
        elif self._tag in {"td", "th"} and self.rows:
            self.rows[-1][-1] += data


def _parse(html: str) -> _Text:
    parser = _Text()
    parser.feed(html)
    return parser


def test_every_case_field_and_code_has_a_german_label() -> None:
    assert set(labels.CASE_FIELDS) == set(COLUMNS["cases"])
    assert set(labels.CLIENT_FIELDS) == set(CLIENT_FIELDS)
    for kind, values in (
        ("gender", codes.GENDER),
        ("residence_status", codes.RESIDENCE),
        ("german_level", codes.GERMAN_LEVEL),
        ("topics", codes.TOPIC),
        ("case_type", codes.CASE_TYPE),
        ("closure_reason", codes.CLOSURE),
        ("channel", codes.CONTACT_CHANNEL),
        ("target_type", codes.REFERRAL_TARGET),
        ("form", codes.CONSENT_FORM),
        ("legal_regime", codes.LEGAL_REGIME),
        ("hold_reason", codes.HOLD_REASON),
        ("reason", codes.DECLINE_REASON | codes.WITHDRAW_REASON | codes.ERASURE_REASON),
    ):
        assert all(labels.has(kind, v) for v in values), kind
    assert set(PROVISIONS) == codes.LEGAL_REGIME
    assert all(set(p) == {key for key, _, _ in RIGHTS} for p in PROVISIONS.values())


def test_the_document_is_german_and_lists_referrals_and_accesses(office_a: Office) -> None:
    case_id = _full_case(office_a)
    office_a.store.access.audit("beratungs-app", "case.read", case_id=case_id)
    html = render(_export(office_a, case_id), "Caritas Nürnberg")
    doc = _parse(html)
    assert doc.lang == "de"
    for heading in (
        "Welche Daten wir über Sie gespeichert haben",
        "Ihre Einwilligungen",
        "An wen wir Angaben über Sie weitergegeben haben",
        "Wann Ihre Daten gelöscht werden",
        "Wer Ihre Akte wann geöffnet hat",
        "Ihre Rechte",
    ):
        assert heading in doc.headings, heading
    assert "Weiterleitung an AWO Fürth" in doc.headings
    assert ["Familienname", "Haddad"] in doc.rows
    assert ["Geschlecht", "weiblich"] in doc.rows
    assert ["Welche Angaben", "Vorname, Themen der Beratung, Notiz"] in doc.rows
    assert ["Stand", "gesendet"] in doc.rows
    accessed = [r for r in doc.rows if "beratungs-app" in r]
    assert accessed
    assert accessed[0][-1] == "Akte geöffnet"
    text = " ".join(doc.text)
    for provision in PROVISIONS["gdpr"].values():
        assert provision in text
    assert "female" not in text
    assert "case_management" not in text


@pytest.mark.parametrize("regime", sorted(codes.LEGAL_REGIME))
def test_the_rights_name_the_articles_of_the_offices_regime(office_a: Office, regime: str) -> None:
    case_id = office_a.store.cases.create(CASE)
    office_a.store.consents.record(case_id, consent_for("awo-fue", ["topics"], legal_regime=regime))
    text = " ".join(_parse(render(_export(office_a, case_id), "Caritas")).text)
    for provision in PROVISIONS[regime].values():
        assert provision in text
    others = {p for r, ps in PROVISIONS.items() if r != regime for p in ps.values()}
    assert not any(p in text for p in others)


def test_the_document_escapes_stored_values(office_a: Office) -> None:
    case_id = office_a.store.cases.create(CASE | {"note": "<script>alert(1)</script>"})
    html = render(_export(office_a, case_id), "<b>Office</b>")
    assert "<script>" not in html
    assert "<b>" not in html
    assert "&lt;script&gt;" in html


# ------------------------------------------------------------------- the API


async def _case(client: Client, auth: dict[str, str]) -> str:
    resp = await client.post(f"{API}/cases", json=CASE, headers=auth)
    assert resp.status == 201
    return str((await resp.json())["id"])


async def test_api_json_export_is_audited_in_the_export(client: Client, api_node: ApiNode) -> None:
    case_id = await _case(client, api_node.auth)
    assert (await client.get(f"{API}/cases/{case_id}", headers=api_node.auth)).status == 200
    headers = api_node.auth | {"X-Acting-User": "berater-7"}
    resp = await client.get(f"{API}/cases/{case_id}/export", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/json"
    assert resp.headers["Cache-Control"] == "no-store"
    export = await resp.json()
    assert export["case"]["family_name"] == "Haddad"
    assert export["office"]["name"] == "Caritas Nürnberg"
    actions = [a["action"] for a in export["accesses"]]
    assert actions == ["case.create", "case.read", EXPORT_ACTION]
    assert export["accesses"][-1]["app"] == "test-app"
    assert export["accesses"][-1]["actor"] == "berater-7"
    assert all(set(a) == set(COLUMNS["audit"]) for a in export["accesses"])
    store = client.app[STORE]
    rows = await store.run(store.access.audit_rows, case_id)
    assert [r["action"] for r in rows][-1] == EXPORT_ACTION


async def test_api_html_export(client: Client, api_node: ApiNode) -> None:
    case_id = await _case(client, api_node.auth)
    resp = await client.get(f"{API}/cases/{case_id}/export?format=html", headers=api_node.auth)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/html"
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    doc = _parse(await resp.text())
    assert "Wer Ihre Akte wann geöffnet hat" in doc.headings
    assert any(r[-1] == "Auskunft über Ihre Daten erstellt" for r in doc.rows)


async def test_api_unknown_case_is_404_and_writes_no_audit_row(
    client: Client, api_node: ApiNode
) -> None:
    store = client.app[STORE]
    before = len(await store.run(store.access.audit_rows))
    resp = await client.get(f"{API}/cases/{'0' * 32}/export", headers=api_node.auth)
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    assert len(await store.run(store.access.audit_rows)) == before


async def test_api_erased_case_is_410_without_personal_data(
    client: Client, api_node: ApiNode
) -> None:
    case_id = await _case(client, api_node.auth)
    store = client.app[STORE]
    await store.run(store.erasure.erase_case, case_id, "client_request", app="test")
    for query in ("", "?format=html"):
        resp = await client.get(f"{API}/cases/{case_id}/export{query}", headers=api_node.auth)
        assert resp.status == 410
        problem = await resp.json(content_type=None)
        assert problem["status"] == 410
        assert not any(value in json.dumps(problem) for value in PERSONAL)


async def test_api_refuses_an_unknown_format(client: Client, api_node: ApiNode) -> None:
    case_id = await _case(client, api_node.auth)
    resp = await client.get(f"{API}/cases/{case_id}/export?format=pdf", headers=api_node.auth)
    assert resp.status == 400


def test_store_errors_name_no_personal_data(office_a: Office) -> None:
    case_id = office_a.store.cases.create(CASE)
    with pytest.raises(NotFound) as missing:
        _export(office_a, "f" * 32)
    office_a.store.erasure.erase_case(case_id, "client_request", app="test")
    with pytest.raises(Gone) as gone:
        _export(office_a, case_id)
    for exc in (missing.value, gone.value):
        assert not any(value in str(exc) for value in PERSONAL)


def test_an_erasure_notice_about_the_case_is_exported(office_a: Office) -> None:
    """Another office erased the client's case and told this office, which keeps its own."""
    case_id = office_a.store.cases.create(CASE)
    office_a.store.ctx.run(
        "INSERT INTO erasure_requests (referral_id, peer, received, case_id, erased, kept)"
        " VALUES (?, 'awo-fue', ?, ?, '[\"phone\"]', '[\"case\"]')",
        ("e" * 32, office_a.clock.t, case_id),
    )
    export = _export(office_a, case_id)
    (notice,) = export["erasure_requests"]
    assert notice["peer_name"] == "AWO Fürth"
    assert notice["erased"] == ["phone"]
    assert notice["kept"] == ["case"]
    assert notice["settled"] is None
    text = " ".join(" ".join(_parse(render(export, "Caritas")).text).split())
    assert "AWO Fürth mitgeteilt" in text
    assert "was sie uns über Sie geschickt hatte: Telefon." in text
