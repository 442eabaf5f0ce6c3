"""The metadata contract every store keeps, and the URL that picks one.

The log, the Kafka listener and the group coordinator code against :class:`MetadataStore`
only; the SQLite and PostgreSQL stores pass one contract test suite, so either can sit under a
running cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from streamhouse.broker.metadata.config import TopicConfig
from streamhouse.broker.metadata.models import (
    AgentInfo,
    CommittedOffset,
    Lease,
    PartitionState,
    ProducerPartitionState,
    SegmentRecord,
    SourceDeclaration,
    Topic,
)
from streamhouse.broker.metadata.postgres import PostgresMetadataStore
from streamhouse.broker.metadata.sqlite import SqliteMetadataStore


@runtime_checkable
class MetadataStore(Protocol):
    """Topics, partitions, segments, agents, leases, group offsets and producer ids.

    All times are epoch milliseconds from the store's own clock (:meth:`now_ms`). Every
    method is atomic: when it raises, nothing of it was stored. See ``SqlMetadataStore`` for
    the documented behaviour of each method.
    """

    async def migrate(self) -> None: ...
    async def close(self) -> None: ...
    async def now_ms(self) -> int: ...

    async def create_topic(
        self, name: str, partitions: int, config: TopicConfig = ...
    ) -> Topic: ...
    async def get_topic(self, name: str) -> Topic: ...
    async def list_topics(self) -> list[Topic]: ...
    async def update_topic_config(
        self, name: str, changes: Mapping[str, str | int | None]
    ) -> Topic: ...
    async def delete_topic(self, name: str) -> list[SegmentRecord]: ...
    async def add_partitions(self, name: str, total: int) -> Topic: ...

    async def get_partition(self, topic: str, partition: int) -> PartitionState: ...
    async def list_partitions(self, topic: str) -> list[PartitionState]: ...

    async def commit_segment(
        self, segment: SegmentRecord, *, holder: str, epoch: int
    ) -> PartitionState: ...
    async def list_segments(self, topic: str, partition: int) -> list[SegmentRecord]: ...
    async def delete_segments(
        self, topic: str, partition: int, base_offsets: Sequence[int], *, new_log_start: int
    ) -> PartitionState: ...

    async def register_agent(
        self, agent_id: str, address: str, kafka_address: str = ""
    ) -> AgentInfo: ...
    async def heartbeat_agent(self, agent_id: str) -> None: ...
    async def list_agents(self, *, alive_within_ms: int | None = None) -> list[AgentInfo]: ...
    async def remove_agent(self, agent_id: str) -> None: ...

    async def acquire_lease(
        self, topic: str, partition: int, holder: str, ttl_ms: int
    ) -> Lease: ...
    async def renew_lease(
        self, topic: str, partition: int, holder: str, epoch: int, ttl_ms: int
    ) -> Lease: ...
    async def release_lease(self, topic: str, partition: int, holder: str, epoch: int) -> None: ...
    async def get_lease(self, topic: str, partition: int) -> Lease | None: ...
    async def list_leases(self, *, holder: str | None = None) -> list[Lease]: ...

    async def commit_offsets(
        self, group: str, offsets: Sequence[tuple[str, int, int, str]]
    ) -> None: ...
    async def fetch_offsets(
        self, group: str, topic: str | None = None
    ) -> list[CommittedOffset]: ...
    async def list_groups(self) -> list[str]: ...
    async def delete_group(self, group: str) -> None: ...

    async def init_producer(self, producer_id: int | None = None) -> tuple[int, int]: ...
    async def get_producer_state(
        self, producer_id: int, topic: str, partition: int
    ) -> ProducerPartitionState | None: ...
    async def put_producer_state(self, state: ProducerPartitionState) -> None: ...

    async def create_source(
        self, source: SourceDeclaration, *, if_not_exists: bool = False, or_replace: bool = False
    ) -> SourceDeclaration: ...
    async def get_source(self, name: str) -> SourceDeclaration: ...
    async def list_sources(self) -> list[SourceDeclaration]: ...
    async def delete_source(self, name: str) -> SourceDeclaration: ...


def open_metadata_store(url: str) -> MetadataStore:
    """Builds the store a URL names; nothing is connected until first use.

    * ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``
    * ``postgresql://user:pass@host:port/db`` or ``postgres://...``; an optional
      ``?schema=name`` query parameter selects the schema (default ``public``).

    Raises:
        ValueError: Unknown scheme or an empty SQLite path.
    """
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://") :]
        if not rest.startswith("/") or len(rest) < 2:
            raise ValueError(
                f"metadata URL {url!r}: use sqlite:///relative.db, sqlite:////abs/path.db "
                "or sqlite:///:memory:"
            )
        return SqliteMetadataStore(rest[1:])
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = "public"
        kept = []
        for key, value in query:
            if key == "schema":
                schema = value
            else:
                kept.append((key, value))
        clean = urlunsplit(parts._replace(query=urlencode(kept)))
        return PostgresMetadataStore(clean, schema=schema)
    raise ValueError(
        f"metadata URL {url!r} has an unknown scheme; use sqlite:///path.db or postgresql://..."
    )
