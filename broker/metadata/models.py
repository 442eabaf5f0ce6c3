"""The values a metadata store hands out: small frozen records, times in epoch milliseconds."""

from __future__ import annotations

from dataclasses import dataclass, field

from streamhouse.broker.metadata.config import TopicConfig


@dataclass(frozen=True)
class Topic:
    """A topic; ``topic_id`` is never reused, so object keys of a deleted topic never collide."""

    name: str
    topic_id: int
    partitions: int
    config: TopicConfig = field(default_factory=TopicConfig)
    created_at: int = 0


@dataclass(frozen=True)
class PartitionState:
    """Committed offsets of one partition.

    ``next_offset`` is one past the last offset committed in a segment; records after it may
    exist in a leader's memory or WAL but are not in the metadata yet.
    """

    topic: str
    partition: int
    log_start_offset: int
    next_offset: int


@dataclass(frozen=True)
class SegmentRecord:
    """One immutable segment object and the offsets and times it covers."""

    topic: str
    partition: int
    base_offset: int
    last_offset: int
    record_count: int
    min_timestamp: int
    max_timestamp: int
    size_bytes: int
    object_key: str
    writer_epoch: int
    created_at: int = 0


@dataclass(frozen=True)
class AgentInfo:
    """A broker agent and when it last proved it is alive."""

    agent_id: str
    address: str
    heartbeat_at: int
    started_at: int
    kafka_address: str = ""


@dataclass(frozen=True)
class Lease:
    """Write ownership of a partition; ``epoch`` is the fencing token checked on every commit."""

    topic: str
    partition: int
    holder: str
    epoch: int
    expires_at: int


@dataclass(frozen=True)
class CommittedOffset:
    """A consumer group's position in one partition."""

    group: str
    topic: str
    partition: int
    offset: int
    metadata: str
    committed_at: int


@dataclass(frozen=True)
class ProducerPartitionState:
    """What an idempotent producer last wrote to a partition, to drop its retried batches."""

    producer_id: int
    producer_epoch: int
    topic: str
    partition: int
    last_sequence: int
    last_offset: int


@dataclass(frozen=True)
class DeclaredColumn:
    """A column of a declared stream/table; ``key`` is None, ``"key"`` or ``"primary"``.

    ``type`` is SQL type text the engine understands; the store keeps it as given.
    """

    name: str
    type: str
    key: str | None = None


@dataclass(frozen=True)
class SourceDeclaration:
    """A declared stream or table (CREATE STREAM/TABLE): how to read a topic's records.

    ``properties`` holds the WITH (...) settings that shape the reading (formats, timestamp
    column, ...) as JSON values; the engine decides their meaning.
    """

    name: str
    kind: str  # "stream" or "table"
    topic: str
    columns: tuple[DeclaredColumn, ...]
    properties: dict[str, str | int | float | bool] = field(default_factory=dict, hash=False)
    created_at: int = 0
