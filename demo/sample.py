"""Generated, realistic-looking sample data for the demo: request bodies for the node API.

Pure: every function takes a seeded `random.Random` and the demo's `today`, so
the same seed gives the same offices' case loads. Nothing here is real: names
are drawn from common-name lists, phone numbers are random, e-mail addresses
use the reserved example.org domain. Free-text fields are German because a
counsellor would write them so.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

Body = dict[str, Any]


@dataclass(frozen=True)
class Locale:
    """Where an office works: its city and the counsellors who open its cases."""

    city: str
    postcodes: tuple[str, ...]
    streets: tuple[str, ...]
    counsellors: tuple[str, ...]
    prefix: str  # of case pseudonyms, e.g. "CAR" for Caritas
    legal_regime: str  # gdpr, kdg (Catholic) or dsg_ekd (Protestant)


@dataclass(frozen=True)
class Origin:
    """A group of clients: nationality, languages, common names, usual residence titles."""

    nationality: str
    languages: tuple[str, ...]
    female: tuple[str, ...]
    male: tuple[str, ...]
    family: tuple[str, ...]
    residence: tuple[str, ...]
    weight: int


ORIGINS: tuple[Origin, ...] = (
    Origin(
        "SY",
        ("ar", "ku"),
        ("Amina", "Rama", "Lina", "Hiba", "Nour", "Yasmin"),
        ("Mohammad", "Ahmad", "Khaled", "Omar", "Yousef", "Bashar"),
        ("Haddad", "Al-Hassan", "Khalil", "Darwish", "Mansour", "Hamdan"),
        ("residence_permit", "settlement_permit", "residence_permit"),
        6,
    ),
    Origin(
        "UA",
        ("uk", "ru"),
        ("Olena", "Iryna", "Tetiana", "Natalia", "Oksana", "Kateryna"),
        ("Andrii", "Serhii", "Oleksandr", "Dmytro", "Mykola", "Vitalii"),
        ("Kovalenko", "Shevchenko", "Bondarenko", "Tkachenko", "Melnyk", "Boiko"),
        ("residence_permit",),
        6,
    ),
    Origin(
        "AF",
        ("fa", "ps"),
        ("Fatima", "Mariam", "Zahra", "Shabnam", "Parwana"),
        ("Ali", "Hamid", "Mustafa", "Jawad", "Farid", "Naveed"),
        ("Ahmadi", "Hosseini", "Rahimi", "Sultani", "Nazari", "Karimi"),
        ("asylum_pending", "toleration", "residence_permit"),
        4,
    ),
    Origin(
        "TR",
        ("tr", "ku"),
        ("Ayşe", "Elif", "Zeynep", "Fatma", "Emine"),
        ("Mehmet", "Mustafa", "Emre", "Hasan", "Murat"),
        ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Aydın"),
        ("settlement_permit", "residence_permit"),
        3,
    ),
    Origin(
        "RO",
        ("ro",),
        ("Elena", "Ioana", "Maria", "Andreea", "Gabriela"),
        ("Andrei", "Ion", "Florin", "Mihai", "Alexandru"),
        ("Popescu", "Ionescu", "Stan", "Dumitru", "Constantin"),
        ("eu_citizen",),
        3,
    ),
    Origin(
        "KZ",
        ("ru", "de"),
        ("Olga", "Swetlana", "Natalja", "Irina", "Jelena"),
        ("Alexander", "Viktor", "Waldemar", "Eduard", "Juri"),
        ("Schmidt", "Becker", "Wagner", "Neufeld", "Friesen", "Dyck"),
        ("spaetaussiedler",),
        2,
    ),
    Origin(
        "ER",
        ("ti",),
        ("Selam", "Helen", "Saba", "Luwam", "Senait"),
        ("Yonas", "Tesfay", "Daniel", "Berhane", "Filmon"),
        ("Tesfamariam", "Ghebremedhin", "Haile", "Kidane", "Weldu"),
        ("residence_permit", "asylum_pending"),
        2,
    ),
    Origin(
        "IT",
        ("it",),
        ("Giulia", "Francesca", "Chiara", "Sara"),
        ("Marco", "Luca", "Giuseppe", "Antonio"),
        ("Rossi", "Russo", "Esposito", "Romano", "Bianchi"),
        ("eu_citizen",),
        1,
    ),
    Origin(
        "NG",
        ("en", "yo"),
        ("Blessing", "Chioma", "Adaeze", "Funmilayo"),
        ("Emeka", "Oluwaseun", "Chinedu", "Tunde"),
        ("Okafor", "Adeyemi", "Eze", "Balogun", "Nwosu"),
        ("residence_permit", "toleration"),
        1,
    ),
)

TOPIC_WEIGHTS: dict[str, int] = {
    "residence_law": 9,
    "language_course": 8,
    "work_recognition": 6,
    "benefits_livelihood": 8,
    "housing": 6,
    "health": 3,
    "family": 4,
    "education_childcare": 4,
    "debt": 2,
    "authorities": 7,
    "discrimination": 1,
    "other": 1,
}

# Förderplan goals a counsellor would write for a topic: (goal, measure).
GOALS: dict[str, tuple[tuple[str, str], ...]] = {
    "residence_law": (
        (
            "Aufenthaltserlaubnis verlängern",
            "Unterlagen für die Ausländerbehörde zusammenstellen, Termin vereinbaren",
        ),
        ("Niederlassungserlaubnis beantragen", "Voraussetzungen prüfen, Nachweise sammeln"),
    ),
    "language_course": (
        ("Integrationskurs beginnen", "Berechtigungsschein beantragen, Kursträger auswählen"),
        ("Sprachniveau B1 erreichen", "Anmeldung zur DTZ-Prüfung, Lernplan besprechen"),
    ),
    "work_recognition": (
        (
            "Berufsabschluss anerkennen lassen",
            "Zeugnisse übersetzen lassen, Antrag bei der Anerkennungsstelle stellen",
        ),
        ("Arbeitsstelle finden", "Lebenslauf erstellen, Termin bei der Agentur für Arbeit"),
    ),
    "benefits_livelihood": (
        (
            "Lebensunterhalt sichern",
            "Antrag auf Bürgergeld ausfüllen, fehlende Nachweise nachreichen",
        ),
        ("Kindergeld beantragen", "Antrag bei der Familienkasse stellen"),
    ),
    "housing": (
        ("Eigene Wohnung finden", "Wohnberechtigungsschein beantragen, Wohnungsangebote prüfen"),
    ),
    "health": (("Krankenversicherung klären", "Mitgliedschaft bei einer Krankenkasse beantragen"),),
    "family": (("Familiennachzug vorbereiten", "Unterlagen für das Visumverfahren klären"),),
    "education_childcare": (
        ("Kita-Platz für das Kind finden", "Anmeldung im Kita-Portal, Gutschein beantragen"),
        ("Schulabschluss anerkennen lassen", "Zeugnisbewertung beantragen"),
    ),
    "debt": (("Schulden ordnen", "Gläubigerliste erstellen, Termin bei der Schuldnerberatung"),),
    "authorities": (
        ("Post von Behörden verstehen", "Schreiben gemeinsam durchgehen, Fristen notieren"),
    ),
    "discrimination": (("Beschwerde einreichen", "Kontakt zur Antidiskriminierungsstelle"),),
    "other": (("Alltagsfragen klären", "Nächste Schritte gemeinsam festlegen"),),
}

NOTES = (
    "Termine nur vormittags möglich (Kinderbetreuung).",
    "Bitte mit Sprachmittlung, Verständigung auf Deutsch noch schwierig.",
    "Klientin wünscht Kontakt per SMS.",
    "Erreichbar meist nach 16 Uhr.",
    "Unterlagen liegen in Kopie vor.",
)


def _date(d: dt.date) -> str:
    return d.isoformat()


def _pick_weighted(rng: random.Random, weights: dict[str, int], k: int) -> list[str]:
    chosen: list[str] = []
    pool = dict(weights)
    for _ in range(min(k, len(pool))):
        name = rng.choices(list(pool), weights=list(pool.values()))[0]
        chosen.append(name)
        del pool[name]
    return chosen


def phone(rng: random.Random) -> str:
    return (
        f"0{rng.choice(('151', '152', '157', '160', '170', '176'))} {rng.randint(1000000, 9999999)}"
    )


def _ascii(name: str) -> str:
    table = str.maketrans({"ş": "s", "ı": "i", "ç": "c", "ğ": "g", "ö": "o", "ü": "u", "Ç": "C"})
    return name.translate(table).lower().replace(" ", "").replace("-", "")


def case(
    rng: random.Random,
    locale: Locale,
    today: dt.date,
    number: int,
    opened: dt.date | None = None,
) -> Body:
    """The body of `POST /api/v1/cases` for one generated client (opened `opened`, or
    on a day of the last ten months)."""
    origin = rng.choices(ORIGINS, weights=[o.weight for o in ORIGINS])[0]
    gender = rng.choices(("female", "male", "diverse"), weights=(52, 47, 1))[0]
    given = rng.choice(origin.female if gender == "female" else origin.male)
    family = rng.choice(origin.family)
    if opened is None:
        opened = today - dt.timedelta(days=rng.randint(3, 300))
    years_here = rng.choices((0, 1, 2, 4, 8), weights=(4, 4, 3, 2, 1))[0]
    entry = opened - dt.timedelta(days=365 * years_here + rng.randint(20, 300))
    level = rng.choice(("none", "A1", "A2")) if years_here < 2 else rng.choice(("A2", "B1", "B2"))
    if origin.nationality == "KZ":
        level = rng.choice(("A2", "B1", "B2"))
    body: Body = {
        "opened": _date(opened),
        "case_type": rng.choices(("short_counselling", "case_management"), weights=(3, 2))[0],
        "counsellor": rng.choice(locale.counsellors),
        "pseudonym": f"{locale.prefix}-{opened.year}-{number:04d}",
        "given_name": given,
        "family_name": family,
        "birth_year": today.year - rng.randint(19, 66),
        "gender": gender,
        "nationality": origin.nationality,
        "residence_status": rng.choice(origin.residence),
        "entry_month": entry.strftime("%Y-%m"),
        "german_level": level,
        "languages": list(origin.languages),
        "family_members": rng.choices((0, 1, 2, 3, 4), weights=(5, 3, 3, 2, 1))[0],
        "topics": _pick_weighted(rng, TOPIC_WEIGHTS, rng.randint(1, 3)),
    }
    if rng.random() < 0.9:
        body["phone"] = phone(rng)
    if rng.random() < 0.6:
        body["email"] = f"{_ascii(given)}.{_ascii(family)}@example.org"
    if rng.random() < 0.8:
        body["address"] = (
            f"{rng.choice(locale.streets)} {rng.randint(1, 120)}, "
            f"{rng.choice(locale.postcodes)} {locale.city}"
        )
    if rng.random() < 0.3:
        body["note"] = rng.choice(NOTES)
    return body


def contacts(rng: random.Random, case_body: Body, today: dt.date) -> list[Body]:
    """Bodies of `POST .../contacts`: the first talk on the opening day, then follow-ups."""
    opened = dt.date.fromisoformat(case_body["opened"])
    days = sorted({0, *(rng.randint(1, max(1, (today - opened).days)) for _ in range(5))})
    count = 1 if case_body["case_type"] == "short_counselling" else rng.randint(2, 6)
    out = []
    for offset in days[:count]:
        out.append(
            {
                "date": _date(opened + dt.timedelta(days=offset)),
                "channel": rng.choices(
                    ("in_person", "phone", "video", "online", "outreach"),
                    weights=(10, 5, 1, 2, 1),
                )[0],
                "minutes": rng.choice((15, 20, 30, 45, 60, 90)),
                "topics": rng.sample(case_body["topics"], rng.randint(1, len(case_body["topics"]))),
            }
        )
    return out


def agreement(rng: random.Random, case_body: Body, today: dt.date) -> Body:
    """Body of `POST .../agreements`: a Förderplan with one goal per topic of the case."""
    opened = dt.date.fromisoformat(case_body["opened"])
    agreed = min(today, opened + dt.timedelta(days=rng.randint(7, 21)))
    goals = []
    for topic in case_body["topics"]:
        goal, measure = rng.choice(GOALS[topic])
        due = agreed + dt.timedelta(days=rng.choice((30, 60, 90, 180)))
        if due < today:
            status = rng.choice(("achieved", "partly_achieved", "in_progress"))
        else:
            status = rng.choice(("open", "in_progress"))
        goals.append({"goal": goal, "measure": measure, "due": _date(due), "status": status})
    return {"agreed": _date(agreed), "goals": goals}


def closure(rng: random.Random, case_body: Body, today: dt.date) -> Body | None:
    """Body of `POST .../close` for an older short counselling case, else None."""
    opened = dt.date.fromisoformat(case_body["opened"])
    if case_body["case_type"] != "short_counselling" or (today - opened).days < 60:
        return None
    reason = rng.choices(
        ("goals_achieved", "no_longer_needed", "moved", "contact_lost", "referred"),
        weights=(6, 2, 1, 1, 1),
    )[0]
    closed = opened + dt.timedelta(days=rng.randint(14, (today - opened).days))
    return {"closure_reason": reason, "closed": _date(closed)}


def consent(
    rng: random.Random,
    locale: Locale,
    today: dt.date,
    *,
    recipient: str,
    recipient_name: str,
    fields: list[str],
    purpose: str,
) -> Body:
    """Body of `POST .../consents`: written consent for one office and named fields, one year."""
    given = today - dt.timedelta(days=rng.randint(0, 3))
    return {
        "purpose": f"{purpose} ({recipient_name})",
        "recipient": recipient,
        "fields": fields,
        "given": _date(given),
        "expires": _date(given + dt.timedelta(days=365)),
        "form": "written",
        "legal_regime": locale.legal_regime,
    }


# --------------------------------------------------------------------- history
#
# An office's past: clients arriving month by month, each case with its contacts,
# Förderplan and closure dated as they happened. The node API takes every one of
# these dates, so the office's statistics of past months come out as if the demo
# had been recording for a year and more.

# New clients in a month relative to the year's average: fewer in the summer
# holidays and around Christmas, more after New Year and after the summer.
SEASON: dict[int, float] = {
    1: 1.15,
    2: 1.1,
    3: 1.1,
    4: 1.0,
    5: 1.0,
    6: 0.95,
    7: 0.85,
    8: 0.7,
    9: 1.1,
    10: 1.15,
    11: 1.05,
    12: 0.75,
}

# Case management runs for months; how long, in days (a triangular distribution).
_MANAGED_DAYS = (45, 480, 150)
# The closure reasons of the two case types, with their weights.
_SHORT_CLOSURES = {
    "goals_achieved": 6,
    "no_longer_needed": 3,
    "referred": 2,
    "moved": 1,
    "contact_lost": 1,
}
_MANAGED_CLOSURES = {
    "goals_achieved": 6,
    "contact_lost": 2,
    "referred": 1,
    "moved": 1,
    "no_longer_needed": 1,
    "other": 1,
}


@dataclass(frozen=True)
class Load:
    """How many new clients an office sees a month, relative to the demo's average
    office, at the start of the history; and how that changes over a year."""

    monthly: float
    growth: float  # relative change per year: 0.3 is +30 %


@dataclass(frozen=True)
class Story:
    """One client's case from its opening to today, as the API bodies in order:
    open the case, add the contacts and the Förderplan, then close it (or not)."""

    case: Body
    contacts: list[Body]
    agreement: Body | None
    closure: Body | None


def add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month `months` after (before, if negative) `day`'s month."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(first: dt.date) -> dt.date:
    return add_months(first, 1) - dt.timedelta(days=1)


def new_clients(
    rng: random.Random, load: Load, scale: float, month: dt.date, since_start: int, today: dt.date
) -> int:
    """How many cases an office opens in `month` (`since_start` months into the history).

    The mean follows the office's load, its trend and the season; the current month
    counts only its days so far.
    """
    mean = scale * load.monthly * SEASON[month.month] * (1 + load.growth) ** (since_start / 12)
    if month == today.replace(day=1):
        mean *= today.day / month_end(month).day
    return max(0, round(rng.gauss(mean, 0.12 * mean + 0.4)))


def workday(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    """A random Monday to Friday in first..last (`first` if there is none)."""
    days = [
        first + dt.timedelta(days=i)
        for i in range((last - first).days + 1)
        if (first + dt.timedelta(days=i)).weekday() < 5
    ]
    return rng.choice(days) if days else first


def _contact(rng: random.Random, day: dt.date, topics: list[str]) -> Body:
    return {
        "date": _date(day),
        "channel": rng.choices(
            ("in_person", "phone", "video", "online", "outreach"), weights=(10, 5, 1, 2, 1)
        )[0],
        "minutes": rng.choice((15, 20, 30, 45, 60, 90)),
        "topics": rng.sample(topics, rng.randint(1, len(topics))),
    }


def story(
    rng: random.Random, locale: Locale, opened: dt.date, today: dt.date, number: int
) -> Story:
    """A client's case opened on `opened`, told up to `today`.

    Short counselling is mostly over within weeks, with one or two talks; case
    management runs for months, a talk every few weeks, with a Förderplan agreed
    in the first weeks. Nothing is dated after `today`, no contact after the closure.
    """
    body = case(rng, locale, today, number, opened=opened)
    short = body["case_type"] == "short_counselling"
    if short:
        days = rng.randint(0, 10) if rng.random() < 0.6 else rng.randint(11, 60)
        reasons = _SHORT_CLOSURES
        closes = rng.random() < 0.92
    else:
        days = int(rng.triangular(*_MANAGED_DAYS))
        reasons = _MANAGED_CLOSURES
        closes = True
    end: dt.date | None = opened + dt.timedelta(days=days)
    if not closes or end is None or end >= today:
        end = None
    last = end or today
    talks = [opened]
    if short:
        if rng.random() < 0.4 and last > opened:
            talks.append(workday(rng, opened + dt.timedelta(days=1), last))
    else:
        day = opened
        while len(talks) < 8:
            day = day + dt.timedelta(days=rng.randint(14, 56))
            if day > last:
                break
            talks.append(workday(rng, day, min(last, day + dt.timedelta(days=3))))
    contacts = [_contact(rng, d, body["topics"]) for d in sorted(set(talks))]
    agreement = None
    if not short:
        agreed = min(last, opened + dt.timedelta(days=rng.randint(7, 21)))
        agreement = _agreement(rng, body["topics"], agreed, end, today)
    closure = None
    if end is not None:
        reason = rng.choices(list(reasons), weights=list(reasons.values()))[0]
        closure = {"closure_reason": reason, "closed": _date(end)}
    return Story(body, contacts, agreement, closure)


def _agreement(
    rng: random.Random, topics: list[str], agreed: dt.date, closed: dt.date | None, today: dt.date
) -> Body:
    """A Förderplan agreed on `agreed`; its goals' status as of the closure or today."""
    goals = []
    for topic in topics:
        goal, measure = rng.choice(GOALS[topic])
        due = agreed + dt.timedelta(days=rng.choice((30, 60, 90, 180)))
        if closed is not None:
            status = rng.choice(("achieved", "achieved", "partly_achieved", "dropped"))
        elif due < today:
            status = rng.choice(("achieved", "partly_achieved", "in_progress"))
        else:
            status = rng.choice(("open", "in_progress"))
        goals.append({"goal": goal, "measure": measure, "due": _date(due), "status": status})
    return {"agreed": _date(agreed), "goals": goals}


def history(
    rng: random.Random,
    locale: Locale,
    load: Load,
    scale: float,
    start: dt.date,
    today: dt.date,
) -> list[Story]:
    """An office's cases from the month of `start` to today, oldest first.

    Clients came before `start` too: their cases still open at `start` (case
    management of the year before) are included, so the first months of the
    history do not start from an empty office.
    """
    stories: list[Story] = []
    number = 0
    for offset in range(-12, (today.year - start.year) * 12 + today.month - start.month + 1):
        month = add_months(start, offset)
        last = min(month_end(month), today)
        for _ in range(new_clients(rng, load, scale, month, max(offset, 0), today)):
            number += 1
            told = story(rng, locale, workday(rng, month, last), today, number)
            closed = told.closure["closed"] if told.closure else None
            if offset >= 0 or closed is None or closed >= _date(start):
                stories.append(told)
    return stories
