"""Payload validation: values outside the code lists, too many crossings, odd shapes."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.encoding import pack, unpack
from protocol.errors import (
    InvalidCodeError,
    MalformedError,
    ProtocolError,
    UnknownTypeError,
    UnsupportedVersionError,
)
from protocol.payloads import StatsCell, decode_payload, validate_client_fields
from tests.protocol import factories as f

SAMPLES = f.sample_payloads()
BAD = "not_a_code"


def sample_map(type_: str) -> dict[str, Any]:
    m: dict[str, Any] = unpack(pack(SAMPLES[type_].to_map()))
    return m


# (message type, path to the field, expected error). Every code-list field of every payload.
CODE_FIELDS = [
    ("referral.offer", ("target",), InvalidCodeError),
    ("referral.offer", ("consent", "form"), InvalidCodeError),
    ("referral.offer", ("consent", "regime"), InvalidCodeError),
    ("referral.offer", ("consent", "fields", 0), InvalidCodeError),
    ("referral.reply", ("decision",), InvalidCodeError),
    ("referral.reply", ("reason",), InvalidCodeError),
    ("referral.status", ("outcome",), InvalidCodeError),
    ("referral.withdraw", ("reason",), InvalidCodeError),
    ("stats.report", ("dataset",), InvalidCodeError),
    ("stats.report", ("cells", 0, 0), InvalidCodeError),  # measure
    ("stats.report", ("cells", 1, 1, "closure"), InvalidCodeError),
    ("stats.report", ("cells", 1, 1, "gender"), InvalidCodeError),
    ("stats.report", ("cells", 2, 1, "channel"), InvalidCodeError),
    ("stats.report", ("cells", 2, 1, "age_band"), InvalidCodeError),
    ("stats.report", ("cells", 2, 1, "topic"), InvalidCodeError),
]


def set_path(m: Any, path: tuple[str | int, ...], value: object) -> None:
    for key in path[:-1]:
        m = m[key]
    m[path[-1]] = value


@pytest.mark.parametrize(("type_", "path", "error"), CODE_FIELDS, ids=lambda v: str(v))
def test_value_outside_a_code_list_is_refused(
    type_: str, path: tuple[str | int, ...], error: type[ProtocolError]
) -> None:
    """Each code-list field refuses a value that is not in its list."""
    m = sample_map(type_)
    set_path(m, path, BAD)
    with pytest.raises(error):
        decode_payload(type_, m)


@pytest.mark.parametrize("dim", ["residence", "length_of_stay", "nationality", "target"])
def test_every_stats_dimension_refuses_unknown_values(dim: str) -> None:
    """Crossing dimensions and breakdowns outside a cell's measure refuse unknown codes."""
    measure = "referrals_sent" if dim == "target" else "cases_new"
    with pytest.raises(InvalidCodeError):
        StatsCell.from_list([measure, {dim: "de"}, 1, 0])


def test_dimension_not_belonging_to_the_measure_is_refused() -> None:
    """A breakdown of another measure (closure on contacts) is refused."""
    with pytest.raises(InvalidCodeError):
        StatsCell.from_list(["contacts", {"closure": "moved"}, 1, 0])


@pytest.mark.parametrize(
    "field",
    ["gender", "nationality", "residence_status", "languages", "german_level", "topics"],
)
def test_client_code_fields_refuse_values_outside_their_lists(field: str) -> None:
    """Each coded client field refuses an unknown code (as a malformed field)."""
    value: object = [BAD] if field in ("languages", "topics") else BAD
    with pytest.raises(MalformedError, match=field):
        validate_client_fields({field: value})


def test_stats_cell_crossed_by_three_dimensions_is_refused() -> None:
    """Two crossing dimensions are allowed, a third is refused; a breakdown does not count."""
    two = {"closure": "moved", "gender": "male", "age_band": "40_59"}
    assert StatsCell.from_list(["cases_closed", two, 3, 0]).dims == two
    three = {"gender": "male", "age_band": "40_59", "topic": "debt"}
    with pytest.raises(MalformedError, match="more than 2"):
        StatsCell.from_list(["cases_new", three, 3, 0])


def test_offer_carrying_a_field_without_consent_is_refused() -> None:
    """A client field the consent does not list makes the offer malformed."""
    m = sample_map("referral.offer")
    m["client"]["birth_year"] = 1980
    with pytest.raises(MalformedError, match="consent"):
        decode_payload("referral.offer", m)


def test_decline_needs_a_reason_and_acceptance_has_none() -> None:
    """A decline without reason and an acceptance with one are both refused."""
    m = sample_map("referral.reply")
    del m["reason"]
    with pytest.raises(MalformedError, match="reason"):
        decode_payload("referral.reply", m)
    m = sample_map("referral.reply")
    m["decision"] = "accepted"
    with pytest.raises(MalformedError, match="acceptance"):
        decode_payload("referral.reply", m)


def test_repeated_stats_cell_is_refused() -> None:
    """The same measure and dimensions twice in one report are refused."""
    m = sample_map("stats.report")
    m["cells"].append(m["cells"][0])
    with pytest.raises(MalformedError, match="twice"):
        decode_payload("stats.report", m)


def test_unhashable_values_raise_protocol_errors() -> None:
    """Lists where text is expected give ProtocolError, not TypeError (regression)."""
    with pytest.raises(InvalidCodeError):
        StatsCell.from_list([["cases_new"], {}, 1, 0])
    with pytest.raises(MalformedError):
        validate_client_fields({"languages": [["de"]]})
    with pytest.raises(UnknownTypeError):
        decode_payload(["receipt"], {})  # type: ignore[arg-type]  # hostile input on purpose


def test_stats_report_of_dataset_version_1_is_refused_as_unsupported() -> None:
    """A report without cell keys (dataset version 1) is refused with a version error."""
    m = sample_map("stats.report")
    del m["version"]
    m["cells"] = [c[:3] for c in m["cells"]]
    with pytest.raises(UnsupportedVersionError, match="version 2 or 3 is required"):
        decode_payload("stats.report", m)
    for version in (1, 4, True, [2]):
        m["version"] = version
        with pytest.raises(UnsupportedVersionError):
            decode_payload("stats.report", m)


@pytest.mark.parametrize("key", [-1, 2**32, True, 1.5, "7", None])
def test_stats_cell_key_outside_its_range_is_refused(key: object) -> None:
    """A cell key must be an integer in [0, 2**32)."""
    with pytest.raises(MalformedError, match="cell key"):
        StatsCell.from_list(["cases_new", {}, 1, key])
    assert StatsCell.from_list(["cases_new", {}, 1, 2**32 - 1]).cell_key == 2**32 - 1
