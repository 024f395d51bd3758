"""German labels of every code the coordinator sees; codes stay English everywhere else.

One table per code list (protocol/codes.py), so the dashboard, its charts and
its tables never spell a label twice. An unknown code (an open list such as
nationality) is shown as the code itself.
"""

from __future__ import annotations

from collections.abc import Mapping

MEASURES: Mapping[str, str] = {
    "cases_new": "Neue Fälle",
    "cases_active": "Aktive Fälle",
    "cases_closed": "Abgeschlossene Fälle",
    "case_management_with_agreement": "Case Management mit Förderplan",
    "contacts": "Kontakte",
    "family_members": "Mitberatene Familienangehörige",
    "referrals_sent": "Verweisungen gesendet",
    "referrals_accepted": "Verweisungen angenommen",
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
    "office": "Beratungsstelle",
    "organisation": "Träger",
}

_CODES: Mapping[str, Mapping[str, str]] = {
    "gender": {
        "female": "weiblich",
        "male": "männlich",
        "diverse": "divers",
        "unknown": "unbekannt",
    },
    "age_band": {
        "under_27": "unter 27",
        "27_39": "27 bis 39",
        "40_59": "40 bis 59",
        "60_plus": "60 und älter",
        "unknown": "unbekannt",
    },
    "residence": {
        "eu_citizen": "EU-Bürger/in",
        "spaetaussiedler": "Spätaussiedler/in",
        "settlement_permit": "Niederlassungserlaubnis",
        "residence_permit": "Aufenthaltserlaubnis",
        "asylum_pending": "Aufenthaltsgestattung",
        "toleration": "Duldung",
        "naturalised": "eingebürgert",
        "other": "sonstiger Status",
        "unknown": "unbekannt",
    },
    "length_of_stay": {
        "under_1y": "unter 1 Jahr",
        "1_to_3y": "1 bis 3 Jahre",
        "over_3y": "über 3 Jahre",
        "unknown": "unbekannt",
    },
    "topic": {
        "residence_law": "Aufenthaltsrecht",
        "language_course": "Sprachkurs",
        "work_recognition": "Arbeit und Anerkennung",
        "benefits_livelihood": "Leistungen und Lebensunterhalt",
        "housing": "Wohnen",
        "health": "Gesundheit",
        "family": "Familie",
        "education_childcare": "Bildung und Kinderbetreuung",
        "debt": "Schulden",
        "authorities": "Behörden",
        "discrimination": "Diskriminierung",
        "other": "Sonstiges",
    },
    "closure": {
        "goals_achieved": "Ziele erreicht",
        "referred": "weitervermittelt",
        "no_longer_needed": "kein Bedarf mehr",
        "moved": "verzogen",
        "contact_lost": "Kontakt abgebrochen",
        "other": "sonstiger Grund",
    },
    "channel": {
        "in_person": "persönlich",
        "phone": "Telefon",
        "video": "Video",
        "online": "Online (Chat, E-Mail)",
        "outreach": "aufsuchend",
    },
    "target": {
        "mbe": "MBE",
        "jmd": "Jugendmigrationsdienst",
        "integration_course": "Integrationskurs",
        "jobcenter": "Jobcenter",
        "foreigners_authority": "Ausländerbehörde",
        "debt_counselling": "Schuldnerberatung",
        "recognition": "Anerkennungsberatung",
        "psychosocial": "psychosoziale Beratung",
        "other": "sonstige Stelle",
    },
}

TIMELINESS: Mapping[str, str] = {
    "on_time": "gemeldet",
    "late": "verspätet",
    "missing": "fehlt",
    "pending": "ausstehend",
    "open": "Zeitraum läuft",
}

SITE_STATUS: Mapping[str, str] = {
    "pending": "noch nicht eingerichtet",
    "active": "aktiv",
    "revoked": "gesperrt",
}

SERVICES: Mapping[str, str] = _CODES["target"]


def measure(code: str) -> str:
    return MEASURES.get(code, code)


def dimension(code: str) -> str:
    return DIMENSIONS.get(code, code)


def code(dim: str, value: str) -> str:
    """The German label of `value` in code list `dim`; the code itself if there is none."""
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
