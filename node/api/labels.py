"""German labels of the node's codes and fields, for documents written for the client.

Codes travel and are stored in English (protocol/codes.py); what a client
reads is German. One table per code list, so the access export never spells a
label twice. An unknown code (an open list such as nationality or language,
or a code added later) is shown as the code itself. The code lists the hub's
dashboard shows too start from protocol/code_labels.py; where the client
should read more than a coordinator, the label is said here in its own words.
"""

from __future__ import annotations

from collections.abc import Mapping

from protocol import code_labels

# Every exported column of a case (node/storage/export.py COLUMNS["cases"]).
CASE_FIELDS: Mapping[str, str] = {
    "id": "Aktenzeichen (intern)",
    "pseudonym": "Kennung Ihrer Akte",
    "given_name": "Vorname",
    "family_name": "Familienname",
    "birth_year": "Geburtsjahr",
    "gender": "Geschlecht",
    "nationality": "Staatsangehörigkeit",
    "residence_status": "Aufenthaltsstatus",
    "entry_month": "Einreise (Monat)",
    "german_level": "Deutschkenntnisse",
    "languages": "Sprachen",
    "family_members": "Mitberatene Familienangehörige",
    "phone": "Telefon",
    "email": "E-Mail",
    "address": "Anschrift",
    "topics": "Themen der Beratung",
    "note": "Notiz",
    "case_type": "Art der Beratung",
    "counsellor": "Beraterin oder Berater",
    "opened": "Beratung begonnen am",
    "closed": "Beratung beendet am",
    "closure_reason": "Grund für das Ende der Beratung",
    "origin_referral": "Eröffnet aufgrund der Weiterleitung",
    "created": "Akte angelegt",
    "updated": "Zuletzt geändert",
}

# The fields a consent or a referral names (protocol.payloads.CLIENT_FIELDS).
CLIENT_FIELDS: Mapping[str, str] = {
    name: CASE_FIELDS[name]
    for name in (
        "given_name",
        "family_name",
        "birth_year",
        "gender",
        "nationality",
        "residence_status",
        "languages",
        "german_level",
        "phone",
        "email",
        "address",
        "topics",
        "family_members",
        "note",
    )
}

_CODES: Mapping[str, Mapping[str, str]] = {
    "gender": {**code_labels.GENDER, "unknown": "keine Angabe"},
    "residence_status": {**code_labels.RESIDENCE, "unknown": "keine Angabe"},
    "german_level": {
        "none": "keine",
        "A1": "A1 (Anfänger)",
        "A2": "A2",
        "B1": "B1",
        "B2": "B2",
        "C1": "C1",
        "C2": "C2 (sehr gut)",
    },
    "topics": code_labels.TOPIC,
    "case_type": {
        "short_counselling": "Kurzberatung",
        "case_management": "Begleitung über längere Zeit (Case Management)",
    },
    "closure_reason": {
        **code_labels.CLOSURE,
        "referred": "an eine andere Stelle weitervermittelt",
        "no_longer_needed": "keine Beratung mehr nötig",
    },
    "channel": {**code_labels.CONTACT_CHANNEL, "online": "online (Chat, E-Mail)"},
    "target_type": {**code_labels.REFERRAL_TARGET, "mbe": "Migrationsberatung für Erwachsene"},
    "form": {
        "written": "schriftlich",
        "electronic": "elektronisch",
        "verbal_documented": "mündlich (schriftlich festgehalten)",
    },
    "legal_regime": {
        "gdpr": "Datenschutz-Grundverordnung (DSGVO)",
        "kdg": "Gesetz über den Kirchlichen Datenschutz (KDG)",
        "dsg_ekd": "Datenschutzgesetz der EKD (DSG-EKD)",
    },
    "goal_status": {
        "open": "offen",
        "in_progress": "in Arbeit",
        "achieved": "erreicht",
        "partly_achieved": "teilweise erreicht",
        "dropped": "nicht weiter verfolgt",
    },
    "state": {
        "sent": "gesendet",
        "received": "eingegangen",
        "delivered": "zugestellt",
        "accepted": "angenommen",
        "declined": "abgelehnt",
        "first_appointment": "erster Termin hat stattgefunden",
        "completed_successful": "abgeschlossen, erfolgreich",
        "completed_unsuccessful": "abgeschlossen, ohne Erfolg",
        "expired": "verfallen (keine Antwort)",
        "withdrawn": "zurückgezogen",
        "withdrawal_confirmed": "zurückgezogen, Löschung bestätigt",
    },
    "event": {
        "send": "gesendet",
        "receive": "eingegangen",
        "receipt": "zugestellt",
        "expire": "verfallen",
        "accept": "angenommen",
        "decline": "abgelehnt",
        "accepted": "angenommen",
        "declined": "abgelehnt",
        "first_appointment": "erster Termin",
        "completed_successful": "abgeschlossen, erfolgreich",
        "completed_unsuccessful": "abgeschlossen, ohne Erfolg",
        "withdraw": "zurückgezogen",
        "withdrawn": "zurückgezogen",
        "withdrawal_confirmed": "Löschung bestätigt",
        "resend": "erneut gesendet",
        "erasure_requested": "Löschung verlangt",
        "erasure_confirmed": "Löschung bestätigt",
    },
    "reason": {
        # decline reasons
        "no_capacity": "keine freien Plätze",
        "not_responsible": "nicht zuständig",
        "service_not_offered": "Angebot gibt es dort nicht",
        "client_declined": "Sie haben abgelehnt",
        # withdrawal reasons
        "consent_withdrawn": "Einwilligung widerrufen",
        "sent_in_error": "versehentlich gesendet",
        "unanswered": "keine Antwort",
        # erasure reasons
        "client_request": "auf Ihren Wunsch",
        "retention": "Aufbewahrungsfrist abgelaufen",
        "other": "sonstiger Grund",
    },
    "hold_reason": {
        "legal_claim": "Rechtsansprüche (z. B. ein laufendes Verfahren)",
        "official_request": "Anfrage einer Behörde",
        "statutory_retention": "gesetzliche Aufbewahrungspflicht",
        "client_request": "auf Ihren Wunsch",
        "other": "sonstiger Grund",
    },
    "action": {
        "case.list": "in einer Liste von Akten angezeigt",
        "case.create": "Akte angelegt",
        "case.read": "Akte geöffnet",
        "case.update": "Akte geändert",
        "case.close": "Beratung beendet",
        "case.export": "Auskunft über Ihre Daten erstellt",
        "case.erase": "Akte gelöscht",
        "contact.list": "Kontakte angesehen",
        "contact.create": "Kontakt eingetragen",
        "agreement.list": "Förderplan angesehen",
        "agreement.create": "Förderplan angelegt",
        "agreement.update": "Förderplan geändert",
        "consent.list": "Einwilligungen angesehen",
        "consent.create": "Einwilligung eingetragen",
        "consent.withdraw": "Widerruf einer Einwilligung eingetragen",
        "referral.create": "Weiterleitung gesendet",
        "referral.list": "in einer Liste von Weiterleitungen angezeigt",
        "referral.read": "Weiterleitung angesehen",
        "referral.withdraw": "Weiterleitung zurückgezogen",
        "referral.accept": "Weiterleitung angenommen",
        "referral.decline": "Weiterleitung abgelehnt",
        "referral.status": "Stand einer Weiterleitung gemeldet",
        "erasure.settle": "Löschverlangen einer anderen Stelle bearbeitet",
    },
    "direction": {"out": "von uns an eine andere Stelle", "in": "von einer anderen Stelle an uns"},
}


def field(name: str) -> str:
    """The German label of a case or client field; the name itself if there is none."""
    return CASE_FIELDS.get(name, name)


def code(kind: str, value: str) -> str:
    """The German label of `value` in code list `kind`; the code itself if there is none."""
    return _CODES.get(kind, {}).get(value, value)


def has(kind: str, value: str) -> bool:
    """Whether code list `kind` has a label for `value` (tests prove every code has one)."""
    return value in _CODES.get(kind, {})
