"""Code lists (docs/architecture.md, "Code lists"). Codes travel in English; the UIs
label them in German."""

from __future__ import annotations

import re

GENDER = frozenset({"female", "male", "diverse", "unknown"})
# "unknown" is ours (the plan lists none, docs/decisions.md 6): a case without a birth year or entry
# month must still be counted, or the bands would not add up to the total.
AGE_BAND = frozenset({"under_27", "27_39", "40_59", "60_plus", "unknown"})
RESIDENCE = frozenset(
    {
        "eu_citizen",
        "spaetaussiedler",
        "settlement_permit",
        "residence_permit",
        "asylum_pending",
        "toleration",
        "naturalised",
        "other",
        "unknown",
    }
)
LENGTH_OF_STAY = frozenset({"under_1y", "1_to_3y", "over_3y", "unknown"})
TOPIC = frozenset(
    {
        "residence_law",
        "language_course",
        "work_recognition",
        "benefits_livelihood",
        "housing",
        "health",
        "family",
        "education_childcare",
        "debt",
        "authorities",
        "discrimination",
        "other",
    }
)
REFERRAL_TARGET = frozenset(
    {
        "mbe",
        "jmd",
        "integration_course",
        "jobcenter",
        "foreigners_authority",
        "debt_counselling",
        "recognition",
        "psychosocial",
        "other",
    }
)
CLOSURE = frozenset(
    {"goals_achieved", "referred", "no_longer_needed", "moved", "contact_lost", "other"}
)
CASE_TYPE = frozenset({"short_counselling", "case_management"})
CONTACT_CHANNEL = frozenset({"in_person", "phone", "video", "online", "outreach"})
LEGAL_REGIME = frozenset({"gdpr", "kdg", "dsg_ekd"})
# Nationality: ISO 3166-1 alpha-2, checked by shape; "XX" means stateless or unknown.
NATIONALITY = re.compile(r"[A-Z]{2}")

# Codes this project adds where the plan left the list open (docs/architecture.md).
CONSENT_FORM = frozenset({"written", "electronic", "verbal_documented"})
GERMAN_LEVEL = frozenset({"none", "A1", "A2", "B1", "B2", "C1", "C2"})
LANGUAGE = re.compile(r"[a-z]{2,3}")  # ISO 639-1 or 639-3
DECISION = frozenset({"accepted", "declined"})
DECLINE_REASON = frozenset(
    {"no_capacity", "not_responsible", "service_not_offered", "client_declined", "other"}
)
REFERRAL_OUTCOME = frozenset(
    {
        "first_appointment",
        "completed_successful",
        "completed_unsuccessful",
        "withdrawal_confirmed",
    }
)
WITHDRAW_REASON = frozenset({"consent_withdrawn", "sent_in_error", "other"})
# Why a case was erased (DELETE /api/v1/cases/{id}, the retention job); travels
# in the erasure notice to every office that received the client's data.
ERASURE_REASON = frozenset({"client_request", "consent_withdrawn", "retention", "other"})
# Why a closed case is kept past its retention period (a hold pauses its erasure).
HOLD_REASON = frozenset(
    {"legal_claim", "official_request", "statutory_retention", "client_request", "other"}
)
# What an office keeps after an erasure notice under its own responsibility:
# "case" is its own counselling case opened from the accepted referral.
KEPT_ITEM = frozenset({"case"})
# How long an outgoing referral waited for its answer, or has waited without one by
# a period's last day: whole calendar days from the sending date (docs/statistics.md).
WAIT_BAND = frozenset({"same_day", "1_3_days", "4_7_days", "8_14_days", "over_14_days"})

# Statistics (dataset mbe-core).
DATASET = "mbe-core"
# Version 2: every cell carries its cell key (protocol.cellkeys). Version 3 adds
# the measures of unmet need (MEASURES_SINCE). The hub takes both, because it is
# upgraded before the nodes; version 1 has no cell keys and is refused.
DATASET_VERSION = 3
DATASET_VERSIONS = frozenset({2, 3})
PERIOD = re.compile(r"[0-9]{4}(-(0[1-9]|1[0-2])|-Q[1-4])?")
# Years a period may lie in; wider ones are typos, not data (both sides refuse them).
PERIOD_MIN_YEAR = 2000
PERIOD_MAX_YEAR = 2999
# Dimensions a count may be crossed by; at most two per cell.
CROSS_DIMENSIONS: dict[str, frozenset[str] | re.Pattern[str]] = {
    "gender": GENDER,
    "age_band": AGE_BAND,
    "residence": RESIDENCE,
    "length_of_stay": LENGTH_OF_STAY,
    "topic": TOPIC,
    "nationality": NATIONALITY,
}
MAX_CROSS = 2
# Each measure with the breakdown that belongs to it (None: no breakdown).
MEASURES: dict[str, tuple[str, frozenset[str]] | None] = {
    "cases_new": None,
    "cases_active": None,
    "cases_closed": ("closure", CLOSURE),
    "case_management_with_agreement": None,
    "contacts": ("channel", CONTACT_CHANNEL),
    "family_members": None,
    "referrals_sent": ("target", REFERRAL_TARGET),
    "referrals_accepted": ("target", REFERRAL_TARGET),
    "referrals_declined": ("target", REFERRAL_TARGET),
    "referrals_declined_reason": ("decline_reason", DECLINE_REASON),
    "referrals_answered": ("wait_band", WAIT_BAND),
    "referrals_unanswered": ("wait_band", WAIT_BAND),
}
# The crossing dimensions a measure is counted by, and how many of them one cell
# combines (absent: all of CROSS_DIMENSIONS, MAX_CROSS). The measures of unmet need
# are counted by one at a time, never by nationality: with pairs and the open
# nationality list the largest report would no longer fit one sealed message
# (docs/statistics.md, "Which cells are sent").
_ONE_AT_A_TIME = (frozenset(CROSS_DIMENSIONS) - {"nationality"}, 1)
MEASURE_CROSSING: dict[str, tuple[frozenset[str], int]] = {
    "referrals_declined": _ONE_AT_A_TIME,
    "referrals_declined_reason": _ONE_AT_A_TIME,
    "referrals_answered": _ONE_AT_A_TIME,
    "referrals_unanswered": _ONE_AT_A_TIME,
}
# The dataset version that introduced a measure (absent: version 2). A report of an
# older version carrying it is refused: its node would not count it as defined.
MEASURES_SINCE: dict[str, int] = {
    "referrals_declined": 3,
    "referrals_declined_reason": 3,
    "referrals_answered": 3,
    "referrals_unanswered": 3,
}


def crossing(measure: str) -> tuple[frozenset[str], int]:
    """The crossing dimensions `measure` is counted by, and at most how many per cell."""
    return MEASURE_CROSSING.get(measure, (frozenset(CROSS_DIMENSIONS), MAX_CROSS))


def is_code(value: object, codes: frozenset[str] | re.Pattern[str]) -> bool:
    if not isinstance(value, str):
        return False
    if isinstance(codes, frozenset):
        return value in codes
    return codes.fullmatch(value) is not None
