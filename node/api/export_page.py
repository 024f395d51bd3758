"""The client's access export as one printable German HTML document.

Renders the dict of node/storage/export.py (`client_export`) for the client,
in plain language: what the office holds, consents, referrals, when the data
will be deleted, who opened the file when, and the client's rights with the
article numbers of the office's data protection law (GDPR, KDG or DSG-EKD;
docs/client-rights.md). Rendered from `templates/export.html` with
autoescaping; the style (`templates/export.css`, with print rules) is inline
and allowed by its hash in the Content-Security-Policy. Pure: `render` takes
the export, the office name and a time zone, so tests render it with fixed ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import partial
from typing import Any

from node.api import labels
from support.templates import environment, inline_style

ENV = environment("node.api")

_STYLE = inline_style("node.api", "templates/export.css")
_STYLE_MARKUP = _STYLE.markup
CSP = _STYLE.headers["Content-Security-Policy"]
HEADERS = _STYLE.headers

# The client's rights, in the order the document lists them, with the provision
# of each regime. GDPR: Art. 15-18, 20, 21 and 77. KDG (catholic): §§ 17-20, 22,
# 23 and 48. DSG-EKD (protestant): §§ 19-22, 24, 25 and 46. docs/client-rights.md
# says which numbers were checked against the published texts.
RIGHTS: tuple[tuple[str, str, str], ...] = (
    (
        "access",
        "Auskunft",
        "Sie können jederzeit fragen, welche Daten wir über Sie gespeichert haben, wozu"
        " und an wen wir sie weitergegeben haben. Dieses Dokument ist diese Auskunft.",
    ),
    (
        "rectification",
        "Berichtigung",
        "Wenn eine Angabe falsch oder unvollständig ist, sagen Sie es uns. Wir korrigieren sie.",
    ),
    (
        "erasure",
        "Löschung",
        "Sie können verlangen, dass wir Ihre Daten löschen, wenn wir sie nicht mehr"
        " brauchen oder keine Erlaubnis mehr dafür haben. Stellen, an die wir Ihre"
        " Daten weitergegeben haben, informieren wir darüber.",
    ),
    (
        "restriction",
        "Einschränkung",
        "Sie können verlangen, dass wir Ihre Daten vorerst nur aufbewahren und nicht"
        " weiter verwenden, zum Beispiel solange geprüft wird, ob eine Angabe stimmt.",
    ),
    (
        "portability",
        "Daten mitnehmen",
        "Sie können Ihre Daten, die Sie uns gegeben haben, als Datei bekommen, die ein"
        " Computer lesen kann (JSON), und sie einer anderen Stelle geben.",
    ),
    (
        "objection",
        "Widerspruch",
        "Wenn wir Ihre Daten ohne Ihre Einwilligung verwenden, können Sie aus Gründen,"
        " die sich aus Ihrer besonderen Situation ergeben, widersprechen.",
    ),
    (
        "complaint",
        "Beschwerde",
        "Wenn Sie meinen, dass wir mit Ihren Daten falsch umgehen, können Sie sich"
        " beschweren. Die Beschwerde kostet nichts.",
    ),
)

PROVISIONS: Mapping[str, Mapping[str, str]] = {
    "gdpr": {
        "access": "Art. 15 DSGVO",
        "rectification": "Art. 16 DSGVO",
        "erasure": "Art. 17 DSGVO",
        "restriction": "Art. 18 DSGVO",
        "portability": "Art. 20 DSGVO",
        "objection": "Art. 21 DSGVO",
        "complaint": "Art. 77 DSGVO",
    },
    "kdg": {
        "access": "§ 17 KDG",
        "rectification": "§ 18 KDG",
        "erasure": "§ 19 KDG",
        "restriction": "§ 20 KDG",
        "portability": "§ 22 KDG",
        "objection": "§ 23 KDG",
        "complaint": "§ 48 KDG",
    },
    "dsg_ekd": {
        "access": "§ 19 DSG-EKD",
        "rectification": "§ 20 DSG-EKD",
        "erasure": "§ 21 DSG-EKD",
        "restriction": "§ 22 DSG-EKD",
        "portability": "§ 24 DSG-EKD",
        "objection": "§ 25 DSG-EKD",
        "complaint": "§ 46 DSG-EKD",
    },
}

# Where a complaint goes under each regime.
SUPERVISORS: Mapping[str, str] = {
    "gdpr": "bei einer Datenschutz-Aufsichtsbehörde (zum Beispiel der Ihres Bundeslandes)",
    "kdg": "bei der kirchlichen Datenschutzaufsicht der katholischen Kirche"
    " (Diözesandatenschutzbeauftragte)",
    "dsg_ekd": "bei der Datenschutzaufsicht der Evangelischen Kirche in Deutschland"
    " (Der Beauftragte für den Datenschutz der EKD)",
}


# The law in a sentence ("Für uns gilt ...").
LAWS: Mapping[str, str] = {
    "gdpr": "die Datenschutz-Grundverordnung (DSGVO)",
    "kdg": "das Gesetz über den Kirchlichen Datenschutz (KDG) der katholischen Kirche",
    "dsg_ekd": "das Datenschutzgesetz der Evangelischen Kirche in Deutschland (DSG-EKD)",
}


def rights(regime: str) -> list[dict[str, str]]:
    """The rights of the client under `regime` (GDPR if unknown), in document order."""
    provisions = PROVISIONS.get(regime, PROVISIONS["gdpr"])
    return [
        {"key": key, "title": title, "text": text, "provision": provisions[key]}
        for key, title, text in RIGHTS
    ]


def _date(value: str | None) -> str:
    """`2026-09-01` -> `01.09.2026`; a month `2021-04` -> `04/2021`."""
    if not value:
        return "–"
    parts = value.split("-")
    if len(parts) == 2:
        return f"{parts[1]}/{parts[0]}"
    return f"{parts[2]}.{parts[1]}.{parts[0]}"


def _when(stamp: str | None, tz: dt.tzinfo | None) -> str:
    """An RFC 3339 UTC timestamp of the export as local German date and time."""
    if not stamp:
        return "–"
    moment = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return moment.astimezone(tz).strftime("%d.%m.%Y, %H:%M Uhr")


_CODED_FIELDS = {
    "gender": "gender",
    "residence_status": "residence_status",
    "german_level": "german_level",
    "topics": "topics",
    "case_type": "case_type",
    "closure_reason": "closure_reason",
}


def case_value(name: str, value: Any, tz: dt.tzinfo | None = None) -> str:
    """A case field's value as the client reads it."""
    if value is None or value == []:
        return "–"
    if isinstance(value, list):
        kind = _CODED_FIELDS.get(name)
        return ", ".join(labels.code(kind, str(v)) if kind else str(v) for v in value)
    if name in _CODED_FIELDS:
        return labels.code(_CODED_FIELDS[name], str(value))
    if name in {"opened", "closed", "entry_month"}:
        return _date(str(value))
    if name in {"created", "updated"}:
        return _when(str(value), tz)
    return str(value)


def render(export: Mapping[str, Any], office: str, tz: dt.tzinfo | None = None) -> str:
    """The whole document; pure, so tests can render it with a fixed zone."""
    regime = export["legal_regime"]["code"]
    regime_known = regime in PROVISIONS
    return ENV.get_template("export.html").render(
        export=export,
        office=office,
        case_fields=[
            (labels.field(name), case_value(name, value, tz))
            for name, value in export["case"].items()
        ],
        regime=regime if regime_known else "gdpr",
        regime_source=export["legal_regime"]["source"] if regime_known else "default",
        rights=rights(regime),
        supervisor=SUPERVISORS.get(regime, SUPERVISORS["gdpr"]),
        law=LAWS.get(regime, LAWS["gdpr"]),
        style=_STYLE_MARKUP,
        label=labels.code,
        field=labels.field,
        date=_date,
        when=partial(_when, tz=tz),
    )
