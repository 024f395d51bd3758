"""German labels of the shared code lists (protocol/codes.py), written once.

Codes travel and are stored in English; people read German. The coordinator's
dashboard (hub/stats/labels.py) and the client's access document
(node/api/labels.py) both start from these tables, and each may say a label
its own way for its readers (the client document explains more, e.g. "keine
Angabe" where the dashboard says "unbekannt"). Pure data: node and hub never
import each other, so what they share lives here, beside the codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

GENDER: Mapping[str, str] = MappingProxyType(
    {"female": "weiblich", "male": "männlich", "diverse": "divers", "unknown": "unbekannt"}
)
RESIDENCE: Mapping[str, str] = MappingProxyType(
    {
        "eu_citizen": "EU-Bürger/in",
        "spaetaussiedler": "Spätaussiedler/in",
        "settlement_permit": "Niederlassungserlaubnis",
        "residence_permit": "Aufenthaltserlaubnis",
        "asylum_pending": "Aufenthaltsgestattung",
        "toleration": "Duldung",
        "naturalised": "eingebürgert",
        "other": "sonstiger Status",
        "unknown": "unbekannt",
    }
)
TOPIC: Mapping[str, str] = MappingProxyType(
    {
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
    }
)
CLOSURE: Mapping[str, str] = MappingProxyType(
    {
        "goals_achieved": "Ziele erreicht",
        "referred": "weitervermittelt",
        "no_longer_needed": "kein Bedarf mehr",
        "moved": "verzogen",
        "contact_lost": "Kontakt abgebrochen",
        "other": "sonstiger Grund",
    }
)
CONTACT_CHANNEL: Mapping[str, str] = MappingProxyType(
    {
        "in_person": "persönlich",
        "phone": "Telefon",
        "video": "Video",
        "online": "Online (Chat, E-Mail)",
        "outreach": "aufsuchend",
    }
)
REFERRAL_TARGET: Mapping[str, str] = MappingProxyType(
    {
        "mbe": "MBE",
        "jmd": "Jugendmigrationsdienst",
        "integration_course": "Integrationskurs",
        "jobcenter": "Jobcenter",
        "foreigners_authority": "Ausländerbehörde",
        "debt_counselling": "Schuldnerberatung",
        "recognition": "Anerkennungsberatung",
        "psychosocial": "psychosoziale Beratung",
        "other": "sonstige Stelle",
    }
)
DECLINE_REASON: Mapping[str, str] = MappingProxyType(
    {
        "no_capacity": "keine Kapazität",
        "not_responsible": "nicht zuständig",
        "service_not_offered": "Angebot nicht vorhanden",
        "client_declined": "Klient/in lehnt ab",
        "other": "sonstiger Grund",
    }
)
WAIT_BAND: Mapping[str, str] = MappingProxyType(
    {
        "same_day": "am selben Tag",
        "1_3_days": "1 bis 3 Tage",
        "4_7_days": "4 bis 7 Tage",
        "8_14_days": "8 bis 14 Tage",
        "over_14_days": "mehr als 14 Tage",
    }
)
