"""German labels of every code the coordinator sees; codes stay English everywhere else.

One table per code list (protocol/codes.py), so the dashboard, its charts and
its tables never spell a label twice. An unknown code (an open list such as
nationality) is shown as the code itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from protocol import code_labels

MEASURES: Mapping[str, str] = {
    "cases_new": "Neue Fälle",
    "cases_active": "Aktive Fälle",
    "cases_closed": "Abgeschlossene Fälle",
    "case_management_with_agreement": "Case Management mit Förderplan",
    "contacts": "Kontakte",
    "family_members": "Mitberatene Familienangehörige",
    "referrals_sent": "Verweisungen gesendet",
    "referrals_accepted": "Verweisungen angenommen",
    "referrals_declined": "Verweisungen abgelehnt",
    "referrals_declined_reason": "Ablehnungen nach Grund",
    "referrals_answered": "Verweisungen beantwortet",
    "referrals_unanswered": "Verweisungen ohne Antwort",
}

DIMENSIONS: Mapping[str, str] = {
    "gender": "Geschlecht",
    "age_band": "Altersgruppe",
    "residence": "Aufenthaltsstatus",
    "length_of_stay": "Aufenthaltsdauer",
    "topic": "Thema",
    "nationality": "Staatsangehörigkeit",
    "closure": "Abschlussgrund",
    "channel": "Kontaktweg",
    "target": "Verweisungsziel",
    "decline_reason": "Ablehnungsgrund",
    "wait_band": "Wartezeit",
    "office": "Beratungsstelle",
    "organisation": "Träger",
    "area": "Gebiet",
}

_CODES: Mapping[str, Mapping[str, str]] = {
    "gender": code_labels.GENDER,
    "age_band": {
        "under_27": "unter 27",
        "27_39": "27 bis 39",
        "40_59": "40 bis 59",
        "60_plus": "60 und älter",
        "unknown": "unbekannt",
    },
    "residence": code_labels.RESIDENCE,
    "length_of_stay": {
        "under_1y": "unter 1 Jahr",
        "1_to_3y": "1 bis 3 Jahre",
        "over_3y": "über 3 Jahre",
        "unknown": "unbekannt",
    },
    "topic": code_labels.TOPIC,
    "closure": code_labels.CLOSURE,
    "channel": code_labels.CONTACT_CHANNEL,
    "target": code_labels.REFERRAL_TARGET,
    "decline_reason": code_labels.DECLINE_REASON,
    "wait_band": code_labels.WAIT_BAND,
}

TIMELINESS: Mapping[str, str] = {
    "on_time": "gemeldet",
    "late": "verspätet",
    "missing": "fehlt",
    "pending": "ausstehend",
    "open": "Zeitraum läuft",
}

# "revoked": the operator took the office's access away. Not "gesperrt", which reads
# like a number held back for confidentiality.
SITE_STATUS: Mapping[str, str] = {
    "pending": "noch nicht eingerichtet",
    "active": "aktiv",
    "revoked": "Zugang widerrufen",
}

SERVICES: Mapping[str, str] = _CODES["target"]


def measure(code: str) -> str:
    return MEASURES.get(code, code)


def dimension(code: str) -> str:
    return DIMENSIONS.get(code, code)


# Offices without an area in the directory form an area of their own, key "".
NO_AREA_NAME = "ohne Gebiet"


def area(key: str) -> str:
    """An area's name: its key (the directory's text), `ohne Gebiet` for the empty key."""
    return key or NO_AREA_NAME


def code(dim: str, value: str) -> str:
    """The German label of `value` in code list `dim`; the code itself if there is none."""
    if dim == "area":
        return area(value)
    return _CODES.get(dim, {}).get(value, value)


def period(period_id: str) -> str:
    """`2026-11` -> `November 2026`, `2026-Q4` -> `4. Quartal 2026`, `2026` -> `Jahr 2026`."""
    months = [
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ]
    year, _, rest = period_id.partition("-")
    if not rest:
        return f"Jahr {year}"
    if rest.startswith("Q"):
        return f"{rest[1:]}. Quartal {year}"
    return f"{months[int(rest) - 1]} {year}"
