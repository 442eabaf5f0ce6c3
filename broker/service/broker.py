"""Topics, produce, fetch and offset lookups over the agent's partition logs.

Produce validates every batch of every partition before anything is appended, so a corrupt
batch anywhere in a request stores nothing. Partitions are appended concurrently: each has its
own lock and they share the WAL's group commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from streamhouse.broker.log import Acks, AppendResult, LogManager, NotLeaderError, PartitionLog
from streamhouse.broker.log.waiting import wait_for_any
from streamhouse.broker.metadata import (
    AgentInfo,
    InvalidRequestError,
    Topic,
    TopicConfig,
    TopicExistsError,
    UnknownPartitionError,
)
from streamhouse.broker.records import parse_header, validate_batch
from streamhouse.broker.service import metrics

INTERNAL_PREFIX = "__"
DEFAULT_PARTITION_FETCH_BYTES = 1024 * 1024
DEFAULT_FETCH_BYTES = 4 * 1024 * 1024
MAX_FETCH_BYTES = 64 * 1024 * 1024
TOPIC_CACHE_S = 1.0


@dataclass(frozen=True)
class PartitionDescription:
    """One partition as ``describe`` shows it; ``next_offset`` is committed-only when remote."""

    partition: int
    log_start_offset: int
    next_offset: int
    committed_offset: int
    size_bytes: int
    segment_count: int
    leader_agent: str = ""
    leader_address: str = ""
    leader_epoch: int = 0


@dataclass(frozen=True)
class TopicDescription:
    topic: Topic
    partitions: list[PartitionDescription]


@dataclass(frozen=True)
class PartitionProduceResult:
    """The outcome of one partition of a produce request: a result or the error that stopped it."""

    partition: int
    result: AppendResult | None = None
    error: Exception | None = None


@dataclass(frozen=True)
class FetchedPartition:
    partition: int
    high_watermark: int = 0
    log_start_offset: int = 0
    batches: list[bytes] = field(default_factory=list)
    error: Exception | None = None


@dataclass(frozen=True)
class PartitionLeader:
    partition: int
    agent_id: str = ""
    address: str = ""


def is_internal(name: str) -> bool:
    return name.startswith(INTERNAL_PREFIX)


class BrokerService:
    """The wire-independent broker operations of one agent."""

    def __init__(self, manager: LogManager) -> None:
        self.manager = manager
        self.metadata = manager.metadata
        self._topics: dict[str, tuple[float, Topic]] = {}

    async def topic(self, name: str) -> Topic:
        """The topic, cached for a second: produce and fetch must not query metadata each time."""
        now = time.monotonic()
        cached = self._topics.get(name)
        if cached is not None and now - cached[0] < TOPIC_CACHE_S:
            return cached[1]
        topic = await self.metadata.get_topic(name)
        if len(self._topics) > 10_000:
            self._topics.clear()
        self._topics[name] = (now, topic)
        return topic

    # ------------------------------------------------------------------ topics
    async def create_topic(
        self,
        name: str,
        partitions: int = 1,
        configs: Mapping[str, str] | None = None,
        *,
        if_not_exists: bool = False,
    ) -> Topic:
        if is_internal(name):
            raise InvalidRequestError(f"topic names starting with {INTERNAL_PREFIX!r} are reserved")
        config = TopicConfig().with_changes(dict(configs or {}))
        try:
            return await self.manager.create_topic(name, partitions or 1, config)
        except TopicExistsError:
            if if_not_exists:
                return await self.metadata.get_topic(name)
            raise

    async def list_topics(self, *, include_internal: bool = False) -> list[Topic]:
        topics = await self.metadata.list_topics()
        return [t for t in topics if include_internal or not is_internal(t.name)]

    async def describe_topic(self, name: str) -> TopicDescription:
        topic = await self.metadata.get_topic(name)
        states = {p.partition: p for p in await self.metadata.list_partitions(name)}
        leases = {lease.partition: lease for lease in await self.metadata.list_leases()
                  if lease.topic == name}  # fmt: skip
        agents = {a.agent_id: a.address for a in await self.metadata.list_agents()}
        now = await self.metadata.now_ms()
        described = []
        for partition in range(topic.partitions):
            state = states[partition]
            segments = await self.metadata.list_segments(name, partition)
            plog = self._local(name, partition)
            lease = leases.get(partition)
            live = lease is not None and lease.expires_at > now
            described.append(
                PartitionDescription(
                    partition=partition,
                    log_start_offset=plog.log_start_offset if plog else state.log_start_offset,
                    next_offset=plog.high_watermark if plog else state.next_offset,
                    committed_offset=state.next_offset,
                    size_bytes=sum(s.size_bytes for s in segments),
                    segment_count=len(segments),
                    leader_agent=lease.holder if live and lease else "",
                    leader_address=agents.get(lease.holder, "") if live and lease else "",
                    leader_epoch=lease.epoch if lease else 0,
                )
            )
        return TopicDescription(topic, described)

    async def update_topic_config(
        self, name: str, set_: Mapping[str, str] | None = None, reset: Sequence[str] = ()
    ) -> Topic:
        changes: dict[str, str | int | None] = dict(set_ or {})
        changes.update({key: None for key in reset})
        self._topics.pop(name, None)
        return await self.manager.update_topic_config(name, changes)

    async def delete_topic(self, name: str) -> None:
        if is_internal(name):
            raise InvalidRequestError(f"internal topic {name!r} cannot be deleted")
        self._topics.pop(name, None)
        await self.manager.delete_topic(name)

    async def add_partitions(self, name: str, total: int) -> Topic:
        self._topics.pop(name, None)
        return await self.manager.add_partitions(name, total)

    async def alive_agents(self) -> list[AgentInfo]:
        return await self.metadata.list_agents(alive_within_ms=self.manager.config.lease_ttl_ms)

    async def partition_leaders(self, topic: Topic) -> list[PartitionLeader]:
        leaders = await self.manager.partition_leaders(topic.name)
        return [PartitionLeader(p, *leaders.get(p, ("", ""))) for p in range(topic.partitions)]

    # ----------------------------------------------------------------- produce
    async def produce(
        self,
        topic: str,
        partitions: Mapping[int, Sequence[bytes]],
        acks: Acks = Acks.LEADER,
        timeout_s: float = 30.0,
        *,
        prevalidate: bool = True,
    ) -> list[PartitionProduceResult]:
        """Appends each partition's batches; per-partition errors are returned, not raised.

        Raises (nothing stored): UnknownTopicError; InvalidRequestError for a request that
        names a partition twice or none; UnknownPartitionError; RecordBatchError for any
        invalid batch in any partition. With ``prevalidate=False`` batches are checked only by
        each partition's log (which stores nothing of a partition with a bad batch), so a bad
        batch fails its own partition, reported in its result: for callers that want
        per-partition errors, and cheaper, as every batch is then validated once, not twice.
        """
        started = time.perf_counter()
        meta = await self.topic(topic)
        if not partitions:
            raise InvalidRequestError("a produce request needs at least one partition")
        limit = meta.config.max_message_bytes
        records = 0
        size = 0
        for partition, batches in partitions.items():
            if not 0 <= partition < meta.partitions:
                raise UnknownPartitionError(
                    f"topic {topic!r} has partitions 0..{meta.partitions - 1}, not {partition}"
                )
            if not batches:
                raise InvalidRequestError(f"partition {partition} has no record batches")
            for batch in batches:
                if prevalidate:
                    header = validate_batch(batch, max_batch_bytes=limit)
                else:
                    header = parse_header(batch)  # for the counts; the log validates it
                records += header.last_offset_delta + 1
                size += len(batch)

        async def one(partition: int, batches: Sequence[bytes]) -> PartitionProduceResult:
            try:
                plog = await self.manager.partition(topic, partition)
                async with asyncio.timeout(timeout_s):
                    result = await plog.append(batches, acks)
                return PartitionProduceResult(partition, result)
            except Exception as exc:  # reported per partition; the caller maps it
                return PartitionProduceResult(partition, error=exc)

        items = list(partitions.items())
        if len(items) == 1:
            results = [await one(*items[0])]
        else:
            results = list(await asyncio.gather(*(one(p, b) for p, b in items)))
        metrics.PRODUCE_RECORDS.labels(topic).inc(records)
        metrics.PRODUCE_BYTES.labels(topic).inc(size)
        metrics.PRODUCE_LATENCY.labels(acks.name.lower()).observe(time.perf_counter() - started)
        return results

    # ------------------------------------------------------------------- fetch
    async def fetch(
        self,
        topic: str,
        requests: Sequence[tuple[int, int, int]],
        *,
        max_bytes: int = DEFAULT_FETCH_BYTES,
        max_wait_ms: int = 0,
        min_bytes: int = 1,
    ) -> list[FetchedPartition]:
        """Reads ``(partition, offset, max_bytes)`` requests; long-polls up to ``max_wait_ms``
        while fewer than ``min_bytes`` are ready. Per-partition errors are returned."""
        started = time.perf_counter()
        meta = await self.topic(topic)
        seen: set[int] = set()
        for partition, offset, _ in requests:
            if partition in seen:
                raise InvalidRequestError(f"partition {partition} is named twice")
            seen.add(partition)
            if offset < 0:
                raise InvalidRequestError(f"offset {offset} of partition {partition} is negative")
        max_bytes = min(max_bytes or DEFAULT_FETCH_BYTES, MAX_FETCH_BYTES)
        deadline = time.monotonic() + max(max_wait_ms, 0) / 1000
        while True:
            fetched = await self._read_all(meta, requests, max_bytes)
            ready = sum(len(b) for f in fetched for b in f.batches)
            remaining = deadline - time.monotonic()
            if ready >= max(min_bytes, 1) or remaining <= 0 or any(f.error for f in fetched):
                break
            # Wait for records past what was read, not at the requested offset: with fewer than
            # min_bytes ready, data at the requested offset exists already and would wake at once.
            waiting = [(f.partition, _next_offset(f, offset), m)
                       for f, (_, offset, m) in zip(fetched, requests, strict=True)]  # fmt: skip
            await self._wait_any(meta, waiting, remaining)
        records = sum(_record_count(f.batches) for f in fetched)
        metrics.FETCH_RECORDS.labels(topic).inc(records)
        metrics.FETCH_BYTES.labels(topic).inc(sum(len(b) for f in fetched for b in f.batches))
        metrics.FETCH_LATENCY.observe(time.perf_counter() - started)
        return fetched

    async def _read_all(
        self, meta: Topic, requests: Sequence[tuple[int, int, int]], max_bytes: int
    ) -> list[FetchedPartition]:
        out = []
        budget = max_bytes
        for partition, offset, partition_max in requests:
            try:
                plog = await self._leader_log(meta, partition)
                limit = min(partition_max or DEFAULT_PARTITION_FETCH_BYTES, max(budget, 1))
                batches = await plog.read(offset, limit) if budget > 0 else []
                budget -= sum(len(b) for b in batches)
                out.append(
                    FetchedPartition(partition, plog.high_watermark, plog.log_start_offset, batches)
                )
            except Exception as exc:
                out.append(FetchedPartition(partition, error=exc))
        return out

    async def _wait_any(
        self, meta: Topic, requests: Sequence[tuple[int, int, int]], timeout_s: float
    ) -> None:
        positions = []
        for partition, offset, _ in requests:
            plog = self._local(meta.name, partition)
            if plog is not None:
                positions.append((plog, offset))
        await wait_for_any(positions, timeout_s)

    async def _leader_log(self, meta: Topic, partition: int) -> PartitionLog:
        if not 0 <= partition < meta.partitions:
            raise UnknownPartitionError(
                f"topic {meta.name!r} has partitions 0..{meta.partitions - 1}, not {partition}"
            )
        return await self.manager.partition(meta.name, partition)

    def _local(self, topic: str, partition: int) -> PartitionLog | None:
        return self.manager.local_partition(topic, partition)

    # ------------------------------------------------------------------ offsets
    async def list_offsets(
        self, topic: str, partitions: Sequence[int], spec: str, timestamp_ms: int = 0
    ) -> list[tuple[int, int | None, Exception | None]]:
        """``spec`` is ``earliest``, ``latest`` or ``timestamp``; returns (partition, offset,
        error) where offset None means no record is that late."""
        meta = await self.metadata.get_topic(topic)
        wanted = list(partitions) or list(range(meta.partitions))
        out: list[tuple[int, int | None, Exception | None]] = []
        for partition in wanted:
            try:
                plog = await self._leader_log(meta, partition)
                if spec == "earliest":
                    offset: int | None = plog.earliest_offset()
                elif spec == "latest":
                    offset = plog.latest_offset()
                elif spec == "timestamp":
                    offset = await plog.offset_for_timestamp(timestamp_ms)
                else:
                    raise InvalidRequestError(f"unknown offset spec {spec!r}")
                out.append((partition, offset, None))
            except Exception as exc:
                out.append((partition, None, exc))
        return out

    async def leader_address(self, topic: str, partition: int) -> str:
        leader = await self.manager.leader_of(topic, partition)
        return leader[1] if leader else ""


def _next_offset(fetched: FetchedPartition, requested: int) -> int:
    if not fetched.batches:
        return requested
    return max(requested, parse_header(fetched.batches[-1]).last_offset + 1)


def _record_count(batches: Sequence[bytes]) -> int:
    return sum(parse_header(b).last_offset_delta + 1 for b in batches)


def not_leader_address(exc: BaseException) -> str:
    """The leader a NotLeaderError names, if any."""
    return getattr(exc, "leader_address", "") if isinstance(exc, NotLeaderError) else ""
