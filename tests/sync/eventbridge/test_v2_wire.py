"""The v2 wire format, property-based: what botocore's own rpc-v2-cbor serializer writes,
cbor2 reads back unchanged, and the local endpoint's shape check (against botocore's model)
accepts exactly the requests the model allows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import cbor2
from botocore.serialize import create_serializer
from hypothesis import given, settings
from hypothesis import strategies as st

from demo.localaws.eventbridge_v2 import PUT_EVENTS_PATH, service_model
from demo.localaws.model import validate

MODEL = service_model()
OPERATION = MODEL.operation_model("PutEvents")
SERIALIZER = create_serializer(MODEL.metadata["protocol"], include_validation=False)
BUS_ARN = "arn:aws:events:us-east-1:123456789012:event-busv2/posd/abcdefghijklmnopqrstuvwxy"
# The characters the model's id pattern treats as blank: an id must have one that is not.
BLANKS = frozenset(
    [chr(c) for c in range(0x09, 0x0E)]
    + [chr(c) for c in range(0x1C, 0x21)]
    + ["\u1680", *(chr(c) for c in range(0x2000, 0x2007)), *(chr(c) for c in range(0x2008, 0x200B))]
    + ["\u2028", "\u2029", "\u205f", "\u3000"]
)

texts = st.text(min_size=1, max_size=40)
ids = st.text(min_size=1, max_size=140)
times = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
).map(lambda when: when.replace(microsecond=when.microsecond // 1000 * 1000))
entries = st.fixed_dictionaries(
    {
        "Source": texts,
        "DetailType": texts,
        "Detail": st.text(max_size=200),
        "Time": times,
        "SystemMetadata": st.fixed_dictionaries({"DeduplicationId": ids, "EventGroupId": ids}),
    },
    optional={"Resources": st.lists(st.text(max_size=30), max_size=3)},
)


def serialized(request: dict[str, Any]) -> tuple[str, bytes]:
    wire = SERIALIZER.serialize_to_request(request, OPERATION)
    assert wire["headers"]["smithy-protocol"] == "rpc-v2-cbor"
    return wire["url_path"], wire["body"]


def allowed_id(value: str) -> bool:
    return 1 <= len(value) <= 128 and any(ch not in BLANKS for ch in value)


@settings(max_examples=150, deadline=None)
@given(st.lists(entries, min_size=1, max_size=5))
def test_cbor_round_trip_and_shape_check(batch: list[dict[str, Any]]) -> None:
    request = {"EventBusArn": BUS_ARN, "Entries": batch}
    path, body = serialized(request)

    decoded = cbor2.loads(body)

    assert path == PUT_EVENTS_PATH
    assert decoded == request  # timestamps come back as the same aware datetimes
    problems: list[str] = []
    validate(OPERATION.input_shape, decoded, "PutEventsRequest", problems)
    metadata = [entry["SystemMetadata"] for entry in batch]
    expect_ok = all(
        allowed_id(m["DeduplicationId"]) and len(m["EventGroupId"]) <= 128 for m in metadata
    )
    assert (problems == []) == expect_ok, problems


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=80))
def test_only_v2_bus_arns_pass(arn: str) -> None:
    problems: list[str] = []
    request = {"EventBusArn": arn, "Entries": [{"Source": "s", "DetailType": "d"}]}
    validate(OPERATION.input_shape, cbor2.loads(serialized(request)[1]), "r", problems)
    assert problems  # random text is never a v2 bus ARN


def test_structural_problems_are_named() -> None:
    problems: list[str] = []
    request = {"Entries": [{"Source": "", "Detail": 3, "Colour": "red"}] * 101}
    validate(OPERATION.input_shape, request, "PutEventsRequest", problems)
    text = "\n".join(problems)
    for expected in (
        "PutEventsRequest.EventBusArn: required member is missing",
        "PutEventsRequest.Entries: length 101 is above the maximum 100",
        "PutEventsRequest.Entries[0].DetailType: required member is missing",
        "PutEventsRequest.Entries[0].Source: length 0 is below the minimum 1",
        "PutEventsRequest.Entries[0].Detail: expected a string",
        "PutEventsRequest.Entries[0].Colour: unknown member",
    ):
        assert expected in text
