"""Metadata: topics, partitions, committed segments, agents, leases, offsets, producer ids,
and declared streams and tables.

Two stores keep one contract (:class:`MetadataStore`): SQLite for a single embedded agent and
PostgreSQL for a cluster. Ownership of a partition is a lease with an epoch; every segment
commit checks it in the same transaction, so a stale writer can never make data visible.
:class:`PartitionIndex` is the leader's in-memory view of a partition's segments.
"""

from __future__ import annotations

from streamhouse.broker.metadata.config import TopicConfig
from streamhouse.broker.metadata.errors import (
    FencedError,
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidRequestError,
    InvalidTopicError,
    LeaseHeldError,
    MetadataError,
    ProducerFencedError,
    SegmentConflictError,
    SourceExistsError,
    TopicExistsError,
    UnknownAgentError,
    UnknownPartitionError,
    UnknownProducerError,
    UnknownSourceError,
    UnknownTopicError,
)
from streamhouse.broker.metadata.index import PartitionIndex
from streamhouse.broker.metadata.models import (
    AgentInfo,
    CommittedOffset,
    DeclaredColumn,
    Lease,
    PartitionState,
    ProducerPartitionState,
    SegmentRecord,
    SourceDeclaration,
    Topic,
)
from streamhouse.broker.metadata.postgres import PostgresMetadataStore
from streamhouse.broker.metadata.sqlite import SqliteMetadataStore
from streamhouse.broker.metadata.store import MetadataStore, open_metadata_store

__all__ = [
    "AgentInfo",
    "CommittedOffset",
    "DeclaredColumn",
    "FencedError",
    "InvalidConfigError",
    "InvalidPartitionsError",
    "InvalidRequestError",
    "InvalidTopicError",
    "Lease",
    "LeaseHeldError",
    "MetadataError",
    "MetadataStore",
    "PartitionIndex",
    "PartitionState",
    "PostgresMetadataStore",
    "ProducerFencedError",
    "ProducerPartitionState",
    "SegmentConflictError",
    "SegmentRecord",
    "SourceDeclaration",
    "SourceExistsError",
    "SqliteMetadataStore",
    "Topic",
    "TopicConfig",
    "TopicExistsError",
    "UnknownAgentError",
    "UnknownPartitionError",
    "UnknownProducerError",
    "UnknownSourceError",
    "UnknownTopicError",
    "open_metadata_store",
]
