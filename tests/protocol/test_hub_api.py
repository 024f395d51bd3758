"""The hub API contract (protocol/hub_api.py): strict requests, tolerant answers,
errors that name the field but never the value."""

from __future__ import annotations

import msgspec
import pytest

from protocol import hub_api
from protocol.encoding import pack
from protocol.errors import MalformedError, TooLargeError

ID = "0123456789abcdef" * 2
SECRET = "Fatima Al-Sayed"  # stands for personal data that must never be echoed


def test_requests_refuse_unknown_fields_without_naming_them() -> None:
    body = pack({"ids": [ID], SECRET: 1})
    with pytest.raises(MalformedError) as err:
        hub_api.decode_msgpack(body, hub_api.AckRequest, "ack", 1 << 20)
    assert "unknown field" in str(err.value)
    assert SECRET not in str(err.value)


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        ({"ids": [SECRET]}, "$.ids[0]"),
        ({"ids": [True]}, "$.ids[0]"),
        ({"ids": SECRET}, "$.ids"),
        ({}, "ids"),
    ],
)
def test_request_errors_name_the_field_not_the_value(obj: object, path: str) -> None:
    with pytest.raises(MalformedError) as err:
        hub_api.decode_msgpack(pack(obj), hub_api.AckRequest, "ack", 1 << 20)
    assert path in str(err.value)
    assert SECRET not in str(err.value)
    assert str(err.value).startswith("ack: ")


def test_ack_is_bounded() -> None:
    too_many = pack({"ids": [ID] * (hub_api.MAX_ACK_IDS + 1)})
    with pytest.raises(MalformedError, match="length"):
        hub_api.decode_msgpack(too_many, hub_api.AckRequest, "ack", 1 << 20)
    assert hub_api.decode_msgpack(pack({"ids": [ID]}), hub_api.AckRequest, "ack", 1 << 20).ids == [
        ID
    ]


def test_msgpack_limits_hold_before_conversion() -> None:
    with pytest.raises(TooLargeError):
        hub_api.decode_msgpack(b"\x00" * 100, hub_api.AckRequest, "ack", 10)
    with pytest.raises(MalformedError):
        hub_api.decode_msgpack(b"\xc1", hub_api.AckRequest, "ack", 10)


def test_answers_tolerate_new_fields_but_not_wrong_types() -> None:
    answer = hub_api.decode_json(
        b'{"accepted": [], "rejected": [], "added_by_a_newer_hub": 1}',
        hub_api.UploadAnswer,
        "upload answer",
    )
    assert answer == hub_api.UploadAnswer(accepted=[], rejected=[])
    for bad in (b'{"deleted": true}', b'{"deleted": -1}', b'{"deleted": "3"}', b"[1]", b"{"):
        with pytest.raises(MalformedError):
            hub_api.decode_json(bad, hub_api.AckAnswer, "ack answer")


def test_inbox_page_round_trips_through_msgpack() -> None:
    page = hub_api.InboxPage(
        messages=[hub_api.InboxMessage(seq=7, id=ID, envelope=b"\x00\xff")], next=7, more=True
    )
    data = hub_api.encode_msgpack(page)
    assert hub_api.decode_msgpack(data, hub_api.InboxPage, "inbox", 1 << 20) == page


@pytest.mark.parametrize(
    "struct",
    [
        hub_api.UploadAnswer(
            accepted=[ID],
            rejected=[
                hub_api.RejectedEnvelope(
                    id=ID, type=hub_api.problem_type(hub_api.ProblemKind.EXPIRED)
                )
            ],
        ),
        hub_api.AckAnswer(deleted=3),
        hub_api.StatsAnswer(period="2026-10", revision=2, stored=True),
        hub_api.Info(
            region="Mittelfranken",
            versions=[1],
            hub_keys=hub_api.InfoKeys(sign="AA==", enc="AA=="),
            fingerprint="x",
        ),
    ],
)
def test_json_answers_round_trip(struct: msgspec.Struct) -> None:
    assert hub_api.decode_json(hub_api.encode_json(struct), type(struct), "answer") == struct


def test_problem_kind_is_the_last_path_segment() -> None:
    uri = hub_api.problem_type(hub_api.ProblemKind.CLOCK_SKEW)
    assert uri == "https://mbe-sync.invalid/problems/clock-skew"
    assert hub_api.problem_kind(uri) == hub_api.ProblemKind.CLOCK_SKEW
    assert hub_api.problem_kind(uri + "/") == "clock-skew"
    assert hub_api.problem_kind(None) == ""
    assert hub_api.problem_kind(42) == ""
    assert len(hub_api.problem_kind("x" * 500)) == 80


def test_push_frames_encode_as_documented() -> None:
    assert hub_api.push_frame(hub_api.MailFrame()) == '{"type":"mail"}'
    assert hub_api.decode_push_frame(b'{"type":"directory","version":3}') == (
        hub_api.DirectoryFrame(version=3)
    )
