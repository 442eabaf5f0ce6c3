"""Argument checks shared by both stores, run before any SQL so bad input writes nothing.

Integers are range-checked here because PostgreSQL would reject an out-of-range parameter
with a driver error and SQLite would store it silently; either way the caller deserves an
error that names the argument.
"""

from __future__ import annotations

import re

from streamhouse.broker.metadata.errors import (
    InvalidPartitionsError,
    InvalidRequestError,
    InvalidTopicError,
    UnknownPartitionError,
)
from streamhouse.broker.metadata.models import SegmentRecord

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
MAX_PARTITIONS = 100_000  # per topic; a guard against hostile CreateTopics, not a design limit
MAX_TOPIC_NAME = 249  # Kafka's limit
MAX_OFFSET_METADATA = 4096  # Kafka's default offset.metadata.max.bytes
MAX_PRODUCER_EPOCH = 32767  # producer epochs are int16 on the wire

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]+")


def topic_name(name: object) -> str:
    """Checks a name for a new topic against Kafka's rules."""
    if not isinstance(name, str) or not name:
        raise InvalidTopicError(f"topic name must be a non-empty string, got {name!r}")
    if len(name) > MAX_TOPIC_NAME:
        raise InvalidTopicError(
            f"topic name {name[:40]!r}... is {len(name)} characters; the limit is {MAX_TOPIC_NAME}"
        )
    if name in (".", "..") or not _TOPIC_NAME.fullmatch(name):
        raise InvalidTopicError(
            f"topic name {name!r} is not allowed: use ASCII letters, digits, '.', '_' and '-' "
            "(and not '.' or '..' alone)"
        )
    return name


def partition_count(count: object, what: str) -> int:
    """Checks a number of partitions (``what`` says where it came from)."""
    if type(count) is not int or not 1 <= count <= MAX_PARTITIONS:
        raise InvalidPartitionsError(
            f"{what}: partition count must be an integer in [1, {MAX_PARTITIONS}], got {count!r}"
        )
    return count


def partition_number(topic: str, partition: object) -> int:
    """A partition number that can exist; anything else is an unknown partition."""
    if type(partition) is not int or not 0 <= partition < MAX_PARTITIONS:
        raise UnknownPartitionError(f"topic {topic!r} has no partition {partition!r}")
    return partition


def integer(value: object, what: str, low: int, high: int = INT64_MAX) -> int:
    """An int (not a bool) within ``[low, high]``."""
    if type(value) is not int or not low <= value <= high:
        raise InvalidRequestError(f"{what} must be an integer in [{low}, {high}], got {value!r}")
    return value


def name(value: object, what: str) -> str:
    """A non-empty string identifier (agent id, lease holder, group id)."""
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(f"{what} must be a non-empty string, got {value!r}")
    return value


def segment(seg: object, epoch: int) -> SegmentRecord:
    """Checks that a segment record describes a real, non-empty offset range."""
    if not isinstance(seg, SegmentRecord):
        raise InvalidRequestError(f"expected a SegmentRecord, got {type(seg).__name__}")
    where = f"segment {seg.object_key!r} of {seg.topic}[{seg.partition}]"
    integer(seg.base_offset, f"{where}: base_offset", 0)
    integer(seg.last_offset, f"{where}: last_offset", seg.base_offset)
    integer(seg.record_count, f"{where}: record_count", 1, seg.last_offset - seg.base_offset + 1)
    integer(seg.min_timestamp, f"{where}: min_timestamp", -1)
    integer(seg.max_timestamp, f"{where}: max_timestamp", seg.min_timestamp)
    integer(seg.size_bytes, f"{where}: size_bytes", 1)
    integer(seg.created_at, f"{where}: created_at", 0)
    if not isinstance(seg.object_key, str) or not seg.object_key:
        raise InvalidRequestError(f"{where}: object_key must be a non-empty string")
    if seg.writer_epoch != epoch:
        raise InvalidRequestError(
            f"{where}: writer_epoch {seg.writer_epoch!r} differs from the lease epoch {epoch!r}"
        )
    return seg
