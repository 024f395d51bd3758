"""Checks of local records against the code lists, beyond what the API spec enforces.

The store validates its own input because it is also fed by incoming
referrals and tests, not only by the API. Errors name the field, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from node.errors import InvalidInput
from protocol import codes
from protocol.ids import NODE_ID
from protocol.payloads import CLIENT_FIELDS, DATE

MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
GOAL_STATUS = frozenset({"open", "in_progress", "achieved", "partly_achieved", "dropped"})
LIST_FIELDS = frozenset({"languages", "topics"})

Check = Callable[[Any], bool]


def text(max_len: int) -> Check:
    return lambda v: isinstance(v, str) and 0 < len(v) <= max_len


def code(allowed: frozenset[str] | re.Pattern[str]) -> Check:
    return lambda v: codes.is_code(v, allowed)


def _client_check(name: str) -> Check:
    check = CLIENT_FIELDS[name]
    if name in LIST_FIELDS:
        # A case may have no topics or languages yet; a referral never sends an empty list.
        return lambda v: v == [] or check(v)
    return check


# Fields of a case an app may set on create or update (closing has its own route).
CASE_FIELDS: dict[str, Check] = {
    "opened": code(DATE),
    "case_type": code(codes.CASE_TYPE),
    "counsellor": text(100),
    "pseudonym": text(100),
    "entry_month": code(MONTH),
    **{name: _client_check(name) for name in CLIENT_FIELDS},
}
CASE_REQUIRED = frozenset({"case_type", "pseudonym"})
# Columns that may be cleared with null on update.
CASE_NULLABLE = frozenset(CASE_FIELDS) - CASE_REQUIRED - {"opened"} - LIST_FIELDS


def check_fields(
    data: Mapping[str, Any],
    checks: Mapping[str, Check],
    what: str,
    *,
    required: frozenset[str] = frozenset(),
    nullable: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    unknown = sorted(set(data) - set(checks))
    if unknown:
        raise InvalidInput(f"{what}: unknown field {unknown[0][:40]}")
    missing = sorted(required - set(data))
    if missing:
        raise InvalidInput(f"{what}: missing field {missing[0]}")
    for key, value in data.items():
        if value is None and key in nullable:
            continue
        if not checks[key](value):
            raise InvalidInput(f"{what}.{key}: invalid value")
    return dict(data)


def check_node_id(value: Any, what: str) -> str:
    if not codes.is_code(value, NODE_ID):
        raise InvalidInput(f"{what}: not a node id")
    return str(value)


def check_client_field_names(names: Any, what: str) -> list[str]:
    if (
        not isinstance(names, list)
        or not names
        or len(set(names)) != len(names)
        or not all(isinstance(n, str) for n in names)
    ):
        raise InvalidInput(f"{what}: a non-empty list of distinct field names is required")
    unknown = sorted(set(names) - set(CLIENT_FIELDS))
    if unknown:
        raise InvalidInput(f"{what}: unknown client field {unknown[0][:40]}")
    return list(names)


def check_goals(goals: Any) -> list[dict[str, Any]]:
    checks: dict[str, Check] = {
        "goal": text(500),
        "measure": text(1000),
        "due": code(DATE),
        "status": code(GOAL_STATUS),
    }
    if not isinstance(goals, list) or not 0 < len(goals) <= 50:
        raise InvalidInput("agreement.goals: between 1 and 50 goals are required")
    out = []
    for i, goal in enumerate(goals):
        if not isinstance(goal, Mapping):
            raise InvalidInput(f"agreement.goals[{i}]: must be an object")
        out.append(
            check_fields(
                goal,
                checks,
                f"agreement.goals[{i}]",
                required=frozenset({"goal", "measure", "status"}),
                nullable=frozenset({"due"}),
            )
        )
    return out
