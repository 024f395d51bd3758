"""Dataset mbe-core version 3 on the wire: the measures of unmet need are valid in a
version-3 report only, with their own code lists and crossings; version 2 stays valid."""

from __future__ import annotations

from typing import Any

import pytest

from protocol import codes
from protocol.envelope import Envelope, open_envelope
from protocol.errors import InvalidCodeError, MalformedError
from protocol.payloads import StatsCell, StatsReport, decode_payload
from tests.protocol import factories as f
from tests.protocol import vectors
from tests.protocol.test_vectors import party

CODE = InvalidCodeError


def _map(report: StatsReport) -> dict[str, Any]:
    return report.to_map()


def test_version_2_and_version_3_reports_decode_with_their_version() -> None:
    """A not yet upgraded node's version-2 report and a current one both decode as sent."""
    old, new = f.stats_report(), f.stats_report_v3()
    assert decode_payload("stats.report", _map(old)) == old
    assert decode_payload("stats.report", _map(new)) == new
    assert (old.version, new.version) == (2, codes.DATASET_VERSION)


@pytest.mark.parametrize("measure", sorted(codes.MEASURES_SINCE))
def test_a_version_2_report_with_a_measure_of_version_3_is_refused(measure: str) -> None:
    """An old node never counted the new measures: such a report is refused, not mixed in."""
    m = _map(f.stats_report())
    m["cells"].append([measure, {}, 1, 7])
    with pytest.raises(InvalidCodeError, match="not in dataset version 2"):
        decode_payload("stats.report", m)
    m["version"] = 3
    assert StatsReport.from_map(m).version == 3


@pytest.mark.parametrize(
    ("cell", "error"),
    [
        (["referrals_answered", {"wait_band": "2_weeks"}, 1, 0], CODE),
        (["referrals_unanswered", {"wait_band": "4_7_days", "target": "mbe"}, 1, 0], CODE),
        (["referrals_declined_reason", {"decline_reason": "busy"}, 1, 0], CODE),
        (["referrals_declined", {"decline_reason": "no_capacity"}, 1, 0], CODE),
        (["referrals_declined", {"nationality": "SY"}, 1, 0], CODE),
        (["referrals_answered", {"gender": "male", "age_band": "40_59"}, 1, 0], MalformedError),
        (["cases_new", {"wait_band": "same_day"}, 1, 0], CODE),
    ],
)  # fmt: skip
def test_cells_outside_the_new_measures_definitions_are_refused(
    cell: list[Any], error: type[Exception]
) -> None:
    """Unknown wait bands or reasons, another measure's breakdown, nationality or a pair of
    crossing dimensions on a measure of unmet need: refused."""
    with pytest.raises(error):
        StatsCell.from_list(cell)


def test_each_wait_band_and_decline_reason_with_one_crossing_is_valid() -> None:
    """Every code of the two new lists is accepted, alone and with one crossing dimension."""
    for band in codes.WAIT_BAND:
        for measure in ("referrals_answered", "referrals_unanswered"):
            cell = StatsCell.from_list([measure, {"wait_band": band, "topic": "debt"}, 2, 9])
            assert cell.dims == {"wait_band": band, "topic": "debt"}
    for reason in codes.DECLINE_REASON:
        cell = StatsCell.from_list(["referrals_declined_reason", {"decline_reason": reason}, 1, 0])
        assert cell.dims == {"decline_reason": reason}


def test_the_committed_version_3_vector_opens_to_a_report_with_every_new_measure() -> None:
    """tests/vectors/stats.json opens to a version-3 report; envelope.json's stays version 2."""
    (case,) = vectors.load("stats.json")["cases"]
    env = Envelope.decode(bytes.fromhex(case["envelope"]))
    sender = party(case["sender"])
    msg = open_envelope(env, party("hub"), "hub", sender.public, now=case["open_at"])
    assert isinstance(msg.payload, StatsReport)
    assert msg.payload.version == 3
    assert {c.measure for c in msg.payload.cells} >= set(codes.MEASURES_SINCE)
    (old,) = [c for c in vectors.load("envelope.json")["cases"] if c["type"] == "stats.report"]
    assert old["inner"]["payload"]["version"] == 2
