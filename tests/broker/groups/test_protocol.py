"""ConsumerProtocol codec: byte-compatible with kafka-python, and safe on hostile bytes."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.protocol.consumer.metadata import (
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)
from streamhouse.broker.groups import (
    Assignment,
    GroupProtocolError,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from streamhouse.broker.groups.protocol import decode_sticky_user_data

KSub = ConsumerProtocolSubscription
KAssign = ConsumerProtocolAssignment

topic_names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
partitions = st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=5)
by_topic = st.dictionaries(topic_names, partitions, max_size=4)
user_data = st.none() | st.binary(max_size=20)


def _owned_pairs(owned: dict[str, list[int]]) -> list[tuple[str, int]]:
    return [(t, p) for t, ps in owned.items() for p in ps]


@given(
    version=st.integers(0, 3),
    topics=st.lists(topic_names, max_size=5),
    data=user_data,
    owned=by_topic,
    generation=st.integers(-(2**31), 2**31 - 1),
    rack=st.none() | topic_names,
)
@settings(max_examples=200, deadline=None)
def test_subscriptions_round_trip_with_kafka_python(
    version: int,
    topics: list[str],
    data: bytes | None,
    owned: dict[str, list[int]],
    generation: int,
    rack: str | None,
) -> None:
    ours = Subscription(topics, data, _owned_pairs(owned), generation, rack)
    encoded = encode_subscription(ours, version)

    theirs = KSub.decode(encoded)
    assert theirs.version == version
    assert list(theirs.topics) == topics
    assert theirs.user_data == data
    if version >= 1:
        assert {tp.topic: list(tp.partitions) for tp in theirs.owned_partitions} == owned
    if version >= 2:
        assert theirs.generation_id == generation
    if version >= 3:
        assert theirs.rack_id == rack

    # and back: kafka-python's bytes are ours, and decode to the same fields
    kafka_bytes = KSub(
        version=version,
        topics=topics,
        user_data=data,
        owned_partitions=[KSub.TopicPartition(topic=t, partitions=ps) for t, ps in owned.items()],
        generation_id=generation,
        rack_id=rack,
    ).encode()
    assert kafka_bytes == encoded
    decoded = decode_subscription(kafka_bytes)
    assert decoded.topics == topics
    assert decoded.user_data == data
    assert decoded.owned == (_owned_pairs(owned) if version >= 1 else [])
    assert decoded.generation_id == (generation if version >= 2 else -1)
    assert decoded.rack == (rack if version >= 3 else None)


@given(version=st.integers(0, 3), assigned=by_topic, data=user_data)
@settings(max_examples=200, deadline=None)
def test_assignments_round_trip_with_kafka_python(
    version: int, assigned: dict[str, list[int]], data: bytes | None
) -> None:
    encoded = encode_assignment(Assignment(assigned, data), version)
    theirs = KAssign.decode(encoded)
    assert {tp.topic: list(tp.partitions) for tp in theirs.assigned_partitions} == assigned
    assert theirs.user_data == data

    kafka_bytes = KAssign(
        version=version,
        assigned_partitions=[
            KAssign.TopicPartition(topic=t, partitions=ps) for t, ps in assigned.items()
        ],
        user_data=data,
    ).encode()
    assert kafka_bytes == encoded
    decoded = decode_assignment(kafka_bytes)
    assert decoded.partitions == assigned
    assert decoded.user_data == data


def test_kafka_python_subscription_v3_bytes_decode_field_by_field() -> None:
    encoded = KSub(
        version=3,
        topics=["orders", "payments"],
        user_data=b"\x01\x02",
        owned_partitions=[KSub.TopicPartition(topic="orders", partitions=[2, 0])],
        generation_id=7,
        rack_id="eu-1a",
    ).encode()
    assert decode_subscription(encoded) == Subscription(
        ["orders", "payments"], b"\x01\x02", [("orders", 2), ("orders", 0)], 7, "eu-1a"
    )


def test_fields_a_version_cannot_carry_are_dropped() -> None:
    full = Subscription(["t"], None, [("t", 1)], 9, "rack")
    assert decode_subscription(encode_subscription(full, 0)) == Subscription(["t"])
    assert decode_subscription(encode_subscription(full, 2)) == Subscription(
        ["t"], None, [("t", 1)], 9, None
    )


def test_empty_bytes_are_an_empty_assignment_but_not_a_subscription() -> None:
    assert decode_assignment(b"") == Assignment({})
    with pytest.raises(GroupProtocolError):
        decode_subscription(b"")


def test_newer_versions_are_read_as_version_three_ignoring_appended_fields() -> None:
    v3 = encode_subscription(Subscription(["a"], b"u", [("a", 0)], 4, "r"), 3)
    v5 = struct.pack(">h", 5) + v3[2:] + b"future field"
    assert decode_subscription(v5) == Subscription(["a"], b"u", [("a", 0)], 4, "r")
    assignment = struct.pack(">h", 9) + encode_assignment(Assignment({"a": [1]}))[2:] + b"x"
    assert decode_assignment(assignment).partitions == {"a": [1]}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff\xff" + b"\x00" * 12, "negative"),  # version -1
        (b"\x00\x01\x7f\xff\xff\xff", "cannot fit"),  # 2**31-1 topics declared
        (b"\x00\x00\x00\x00\x00\x01\x7f\xff", "string of 32767"),
        (b"\x00\x00\x00\x00\x00\x01\x00\x02\xff\xfe\xff\xff\xff\xff", "UTF-8"),
        (b"\x00\x00\x00\x00\x00\x00\x7f\xff\xff\xff", "bytes length"),  # user data 2 GiB
        (b"\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff" + b"junk", "trailing"),
        (b"\x00\x02\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00", "truncated"),
        (b"\x00", "truncated int16"),
    ],
)
def test_malformed_subscriptions_are_refused_with_the_reason(data: bytes, problem: str) -> None:
    with pytest.raises(GroupProtocolError, match=problem):
        decode_subscription(data)


def test_a_huge_declared_partition_count_is_refused_before_allocating() -> None:
    data = b"\x00\x00" + b"\x00\x00\x00\x01" + b"\x00\x01t" + b"\x40\x00\x00\x00"
    with pytest.raises(GroupProtocolError, match="cannot fit"):
        decode_assignment(data)


def test_non_bytes_input_is_a_protocol_error() -> None:
    with pytest.raises(GroupProtocolError):
        decode_subscription("not bytes")  # type: ignore[arg-type]
    with pytest.raises(GroupProtocolError):
        decode_assignment(None)  # type: ignore[arg-type]


def test_encoding_refuses_values_the_format_cannot_hold() -> None:
    with pytest.raises(ValueError, match="version"):
        encode_subscription(Subscription(["t"]), 4)
    with pytest.raises(ValueError, match="int32"):
        encode_assignment(Assignment({"t": [2**31]}))
    with pytest.raises(ValueError, match="int16"):
        encode_subscription(Subscription(["x" * 40_000]))
    with pytest.raises(ValueError, match="list"):
        encode_subscription(Subscription("orders"))  # type: ignore[arg-type]


@given(st.binary(max_size=64))
@settings(max_examples=2500, deadline=None)
def test_random_bytes_decode_or_fail_cleanly(data: bytes) -> None:
    for decode in (decode_subscription, decode_assignment, decode_sticky_user_data):
        with contextlib.suppress(GroupProtocolError):
            decode(data)


@pytest.mark.parametrize("version", range(4))
def test_every_truncation_of_a_valid_message_is_refused(version: int) -> None:
    encoded = encode_subscription(Subscription(["abc"], b"ud", [("abc", 3)], 2, "r"), version)
    for end in range(len(encoded)):
        with pytest.raises(GroupProtocolError):
            decode_subscription(encoded[:end])
    assignment = encode_assignment(Assignment({"abc": [1, 2]}, b"u"), version)
    for end in range(1, len(assignment)):
        with pytest.raises(GroupProtocolError):
            decode_assignment(assignment[:end])


@given(st.integers(0, 3), st.binary(min_size=1, max_size=8))
@settings(max_examples=100, deadline=None)
def test_trailing_garbage_on_a_known_version_is_refused(version: int, junk: bytes) -> None:
    encoded = encode_subscription(Subscription(["abc"], b"ud", [("abc", 3)], 2, "r"), version)
    with pytest.raises(GroupProtocolError, match="trailing"):
        decode_subscription(encoded + junk)


def test_sticky_user_data_from_kafka_python_gives_owned_partitions() -> None:
    from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
    from kafka.structs import TopicPartition

    metadata = StickyPartitionAssignor._metadata(
        ["t"], [TopicPartition("t", 0), TopicPartition("t", 3)], generation=5
    )
    sub = decode_subscription(metadata.encode())
    assert decode_sticky_user_data(sub.user_data or b"") == ([("t", 0), ("t", 3)], 5)


def test_sticky_user_data_in_javas_layout_without_a_version() -> None:
    java_v1 = (
        b"\x00\x00\x00\x01"
        + b"\x00\x01t"
        + b"\x00\x00\x00\x01\x00\x00\x00\x02"
        + b"\x00\x00\x00\x09"
    )
    assert decode_sticky_user_data(java_v1) == ([("t", 2)], 9)
    assert decode_sticky_user_data(java_v1[:-4]) == ([("t", 2)], -1)  # v0: no generation
    with pytest.raises(GroupProtocolError):
        decode_sticky_user_data(java_v1 + b"\x00")
