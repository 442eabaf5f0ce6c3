"""Kafka's ConsumerProtocol: the subscription and assignment bytes inside group requests.

Kafka clients put a ``ConsumerProtocolSubscription`` in each JoinGroup protocol's metadata and
the leader hands out ``ConsumerProtocolAssignment`` bytes through SyncGroup. The coordinator
treats them as opaque except when it assigns partitions itself (members joining over gRPC) or
reports who owns what, so decoding has to survive anything a client, or an attacker, sends:
every length is checked against the bytes actually present before anything is allocated.

Layouts (big-endian, message specs ConsumerProtocolSubscription/Assignment, versions 0-3):

* subscription: int16 version; [string topic]; nullable bytes user_data;
  v1+ [(string topic, [int32 partition])] owned; v2+ int32 generation_id;
  v3+ nullable string rack.
* assignment: int16 version; [(string topic, [int32 partition])]; nullable bytes user_data.

As Kafka does, a version newer than 3 is read with the version-3 layout and whatever follows is
ignored (newer versions may only append fields); for versions 0-3 trailing bytes are garbage.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from streamhouse.broker.groups.errors import GroupProtocolError

LATEST_VERSION = 3
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class Subscription:
    """What a consumer asks for: topics, and what it owned in its last generation."""

    topics: list[str]
    user_data: bytes | None = None
    owned: list[tuple[str, int]] = field(default_factory=list)
    generation_id: int = -1
    rack: str | None = None


@dataclass(frozen=True)
class Assignment:
    """What a consumer is given: partitions by topic, plus assignor-specific user data."""

    partitions: dict[str, list[int]]
    user_data: bytes | None = None


# --------------------------------------------------------------------------- encoding
def encode_subscription(sub: Subscription, version: int = 1) -> bytes:
    """Fields the version cannot carry (owned before v1, generation before v2, rack before v3)
    are dropped, as Kafka drops ignorable fields."""
    _check_version(version)
    out = bytearray(_INT16.pack(version))
    _put_array_len(out, sub.topics)
    for topic in sub.topics:
        _put_string(out, topic)
    _put_bytes(out, sub.user_data)
    if version >= 1:
        _put_topic_partitions(out, _group_by_topic(sub.owned))
    if version >= 2:
        out += _INT32.pack(_int32(sub.generation_id, "generation_id"))
    if version >= 3:
        _put_string(out, sub.rack, nullable=True)
    return bytes(out)


def encode_assignment(assignment: Assignment, version: int = 1) -> bytes:
    _check_version(version)
    out = bytearray(_INT16.pack(version))
    _put_topic_partitions(out, assignment.partitions)
    _put_bytes(out, assignment.user_data)
    return bytes(out)


def _check_version(version: int) -> None:
    if not isinstance(version, int) or not 0 <= version <= LATEST_VERSION:
        raise ValueError(f"consumer protocol version must be 0..{LATEST_VERSION}, got {version!r}")


def _int32(value: object, what: str) -> int:
    if not isinstance(value, int) or not _INT32_MIN <= value <= _INT32_MAX:
        raise ValueError(f"{what} must be an int32, got {value!r}")
    return value


def _put_array_len(out: bytearray, items: object) -> None:
    if isinstance(items, str | bytes) or not hasattr(items, "__len__"):
        raise ValueError(f"expected a list, got {items!r}")
    out += _INT32.pack(len(items))  # type: ignore[arg-type]


def _put_string(out: bytearray, value: str | None, *, nullable: bool = False) -> None:
    if value is None and nullable:
        out += _INT16.pack(-1)
        return
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    data = value.encode()
    if len(data) > 32767:
        raise ValueError(f"string of {len(data)} bytes is longer than the int16 length allows")
    out += _INT16.pack(len(data)) + data


def _put_bytes(out: bytearray, value: bytes | None) -> None:
    if value is None:
        out += _INT32.pack(-1)
        return
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"user_data must be bytes or None, got {type(value).__name__}")
    out += _INT32.pack(len(value)) + bytes(value)


def _put_topic_partitions(out: bytearray, by_topic: dict[str, list[int]]) -> None:
    out += _INT32.pack(len(by_topic))
    for topic, partitions in by_topic.items():
        _put_string(out, topic)
        _put_array_len(out, partitions)
        for partition in partitions:
            out += _INT32.pack(_int32(partition, f"partition of {topic!r}"))


def _group_by_topic(pairs: list[tuple[str, int]]) -> dict[str, list[int]]:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in pairs:
        by_topic.setdefault(topic, []).append(partition)
    return by_topic


# --------------------------------------------------------------------------- decoding
class _Reader:
    """Bounds-checked cursor: every declared length is compared with what is left first."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def fail(self, problem: str) -> GroupProtocolError:
        return GroupProtocolError(f"malformed {self.what} at byte {self.pos}: {problem}")

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def int16(self) -> int:
        if self.remaining() < 2:
            raise self.fail("truncated int16")
        (value,) = _INT16.unpack_from(self.data, self.pos)
        self.pos += 2
        return value

    def int32(self) -> int:
        if self.remaining() < 4:
            raise self.fail("truncated int32")
        (value,) = _INT32.unpack_from(self.data, self.pos)
        self.pos += 4
        return value

    def string(self, *, nullable: bool = False) -> str | None:
        length = self.int16()
        if length == -1 and nullable:
            return None
        if length < 0:
            raise self.fail(f"string length {length}")
        if length > self.remaining():
            raise self.fail(f"string of {length} bytes but only {self.remaining()} left")
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise self.fail("string is not UTF-8") from None

    def nullable_bytes(self) -> bytes | None:
        length = self.int32()
        if length == -1:
            return None
        if length < 0 or length > self.remaining():
            raise self.fail(f"bytes length {length} with {self.remaining()} bytes left")
        value = bytes(self.data[self.pos : self.pos + length])
        self.pos += length
        return value

    def array_len(self, min_item_size: int) -> int:
        """An array count; -1 (null) reads as empty. A count that could not fit is refused."""
        count = self.int32()
        if count == -1:
            return 0
        if count < 0 or count * min_item_size > self.remaining():
            raise self.fail(f"array of {count} items cannot fit in {self.remaining()} bytes")
        return count

    def topic_partitions(self) -> dict[str, list[int]]:
        by_topic: dict[str, list[int]] = {}
        for _ in range(self.array_len(6)):  # int16 topic length + int32 partition count
            topic = self.string()
            assert topic is not None
            count = self.array_len(4)
            if count:
                values = struct.unpack_from(f">{count}i", self.data, self.pos)
                self.pos += 4 * count
            else:
                values = ()
            by_topic.setdefault(topic, []).extend(values)
        return by_topic

    def version(self) -> int:
        version = self.int16()
        if version < 0:
            raise self.fail(f"version {version} is negative")
        return version

    def finish(self, version: int) -> None:
        if version <= LATEST_VERSION and self.remaining():
            raise self.fail(f"{self.remaining()} unexpected trailing bytes")


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise GroupProtocolError(f"{what} must be bytes, got {type(data).__name__}")


def decode_subscription(data: bytes) -> Subscription:
    """Reads any version 0..3 (and newer ones as 3).

    Raises:
        GroupProtocolError: The bytes are not a consumer-protocol subscription.
    """
    reader = _Reader(_as_bytes(data, "subscription"), "consumer subscription")
    version = reader.version()
    topics = [reader.string() for _ in range(reader.array_len(2))]
    user_data = reader.nullable_bytes()
    owned: list[tuple[str, int]] = []
    generation_id = -1
    rack = None
    if version >= 1:
        owned = [(t, p) for t, ps in reader.topic_partitions().items() for p in ps]
    if version >= 2:
        generation_id = reader.int32()
    if version >= 3:
        rack = reader.string(nullable=True)
    reader.finish(version)
    return Subscription(
        topics=topics,  # type: ignore[arg-type]  # non-nullable strings are never None
        user_data=user_data,
        owned=owned,
        generation_id=generation_id,
        rack=rack,
    )


def decode_assignment(data: bytes) -> Assignment:
    """Empty bytes are an empty assignment (what Kafka's coordinator sends a member the leader
    gave nothing).

    Raises:
        GroupProtocolError: The bytes are not a consumer-protocol assignment.
    """
    raw = _as_bytes(data, "assignment")
    if not raw:
        return Assignment({})
    reader = _Reader(raw, "consumer assignment")
    version = reader.version()
    partitions = reader.topic_partitions()
    user_data = reader.nullable_bytes()
    reader.finish(version)
    return Assignment(partitions, user_data)


def decode_sticky_user_data(data: bytes) -> tuple[list[tuple[str, int]], int]:
    """The previous assignment and generation the eager "sticky" assignor keeps in user data.

    Java's StickyAssignor writes ``StickyAssignorUserData`` as [(topic, [partition])] then, in
    v1, an int32 generation, with no version in front; kafka-python writes the same fields
    after an int16 version. Both layouts are tried, Java's first.

    Raises:
        GroupProtocolError: The user data is in neither layout.
    """
    raw = _as_bytes(data, "sticky user data")
    try:
        return _read_sticky(_Reader(raw, "sticky assignor user data"))
    except GroupProtocolError as java_error:
        reader = _Reader(raw, "sticky assignor user data")
        if len(raw) < 2 or reader.version() > 1:
            raise java_error from None
        try:
            return _read_sticky(reader)
        except GroupProtocolError:
            raise java_error from None


def _read_sticky(reader: _Reader) -> tuple[list[tuple[str, int]], int]:
    owned = [(t, p) for t, ps in reader.topic_partitions().items() for p in ps]
    generation = reader.int32() if reader.remaining() == 4 else -1
    reader.finish(0)
    return owned, generation
