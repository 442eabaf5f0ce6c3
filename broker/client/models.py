"""The plain values the client hands back, so callers never see protobuf objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np


class TopicPartition(NamedTuple):
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    """Where an acknowledged record was stored."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int


Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(slots=True)
class ConsumerRecord:
    """One consumed record; ``headers`` are ``(key, value)`` pairs in the order sent."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


@dataclass(frozen=True, slots=True, eq=False)
class BulkSendResult:
    """Where every record of a ``send_many`` went, in input order, as two numpy arrays.

    A list of a million ``RecordMetadata`` objects would cost more than sending the records;
    these arrays cost 12 bytes a record and index like one.
    """

    topic: str
    partitions: np.ndarray  # int32
    offsets: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, index: int) -> RecordMetadata:
        return RecordMetadata(self.topic, int(self.partitions[index]), int(self.offsets[index]), -1)


# ------------------------------------------------------------------------------------ admin
@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    topic_id: int
    partitions: int
    configs: Mapping[str, str] = field(hash=False)
    created_at_ms: int
    internal: bool


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    partition: int
    log_start_offset: int
    next_offset: int
    committed_offset: int
    size_bytes: int
    segment_count: int
    leader_agent: str
    leader_address: str
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class TopicDescription:
    topic: TopicInfo
    partitions: tuple[PartitionInfo, ...]


@dataclass(frozen=True, slots=True)
class AgentInfo:
    agent_id: str
    address: str
    heartbeat_at_ms: int
    started_at_ms: int


@dataclass(frozen=True, slots=True)
class TopicMetadata:
    """Partition count and leader addresses; ``error`` is set for an unknown topic."""

    name: str
    partitions: int
    leaders: Mapping[int, str] = field(hash=False)  # partition -> leader address ("" if none)
    error: Exception | None = None


@dataclass(frozen=True, slots=True)
class ClusterMetadata:
    agents: tuple[AgentInfo, ...]
    topics: Mapping[str, TopicMetadata] = field(hash=False)
    agent_id: str  # the agent that answered


@dataclass(frozen=True, slots=True)
class GroupSummary:
    group: str
    state: str
    members: int


@dataclass(frozen=True, slots=True)
class GroupMember:
    member_id: str
    client_id: str
    client_host: str
    assignment: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed_offset: int  # -1: nothing committed
    end_offset: int
    lag: int
    member_id: str


@dataclass(frozen=True, slots=True)
class GroupDescription:
    group: str
    state: str
    assignor: str
    generation_id: int
    members: tuple[GroupMember, ...]
    offsets: tuple[PartitionLag, ...]
    total_lag: int
