"""The partition logs one agent leads, and the services they share.

Start-up order matters and is fixed here: migrate the metadata schema, register the agent,
scan the WAL (cutting a torn tail), acquire leases, load each partition's committed segments,
put replayed WAL batches back in memory after them, and only then start the background loops
(sealing, lease renewal, retention). Shutdown reverses it: stop the loops, seal and commit what
is in memory, release the leases, close the WAL.

Several agents share the partitions: each claims free partitions up to its fair share and hands
one over per lease round while it holds more than its share and another agent less
(``spreading.py`` decides, this module acts). A restarted agent first takes back the partitions
it still holds leases for, so what its WAL holds can be put back. Requests for a partition led
elsewhere get a NotLeaderError that names the leader.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import time
import uuid
import zlib
from collections.abc import Mapping
from pathlib import Path

from streamhouse.broker import metrics
from streamhouse.broker.log.backfill import CompanionBackfill
from streamhouse.broker.log.config import LogConfig
from streamhouse.broker.log.directory import AgentDirectory
from streamhouse.broker.log.errors import NotLeaderError
from streamhouse.broker.log.keys import parse_segment_key, partition_prefix, split_stream_id
from streamhouse.broker.log.partition import PartitionContext, PartitionLog
from streamhouse.broker.log.spreading import ClusterView, PartitionKey, plan_spread
from streamhouse.broker.metadata import (
    FencedError,
    LeaseHeldError,
    MetadataStore,
    Topic,
    TopicConfig,
    TopicExistsError,
    UnknownAgentError,
    UnknownPartitionError,
    UnknownTopicError,
    open_metadata_store,
)
from streamhouse.broker.records import parse_header
from streamhouse.broker.storage import ObjectStore, SegmentCache, open_object_store
from streamhouse.broker.wal import WalConfig, WriteAheadLog

log = logging.getLogger("streamhouse.log")

LAST_POSSIBLE_OFFSET = 2**63 - 1


class LogManager:
    """Owns the WAL, the segment cache and every partition log this agent leads."""

    GROUPS_TOPIC = "__consumer_offsets"

    def __init__(self, config: LogConfig, metadata: MetadataStore, store: ObjectStore) -> None:
        self.config = config
        self.metadata = metadata
        self.store = store
        self.agent_id = config.agent_id
        self.address = config.advertised_address
        self.cache = SegmentCache(store, Path(config.data_dir) / "cache", config.cache_max_bytes)
        self.wal: WriteAheadLog | None = None
        self.directory = AgentDirectory(metadata)
        self._partitions: dict[PartitionKey, PartitionLog] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # Missing companions of led partitions' segments, written at low priority.
        self.backfill = CompanionBackfill(self.led_partitions, store, self.cache)
        self._ctx: PartitionContext | None = None
        self._claim_lock = asyncio.Lock()
        self._group_partitions = config.group_partitions
        self._alive: frozenset[str] = frozenset()  # live agents as of the last spreading round
        self._handed_over: dict[PartitionKey, float] = {}  # when (monotonic) we gave it away
        self._hand_over_candidate: PartitionKey | None = None
        self._hand_over_task: asyncio.Task[None] | None = None
        self.ready = False

    @classmethod
    def from_urls(
        cls,
        config: LogConfig,
        *,
        metadata_url: str | None = None,
        object_store_url: str | None = None,
    ) -> LogManager:
        """Builds an unstarted manager (default: SQLite and files under ``data_dir``)."""
        data_dir = Path(config.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        metadata = open_metadata_store(metadata_url or f"sqlite:///{data_dir / 'metadata.db'}")
        store = open_object_store(object_store_url or f"file://{data_dir.resolve() / 'objects'}")
        return cls(config, metadata, store)

    @classmethod
    async def open(
        cls,
        config: LogConfig,
        *,
        metadata_url: str | None = None,
        object_store_url: str | None = None,
    ) -> LogManager:
        """Builds a manager from URLs and starts it."""
        manager = cls.from_urls(
            config, metadata_url=metadata_url, object_store_url=object_store_url
        )
        await manager.start()
        return manager

    # --------------------------------------------------------------- start-up
    async def start(self) -> None:
        data_dir = Path(self.config.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        await self.metadata.migrate()
        self.agent_id = self.agent_id or _persistent_agent_id(data_dir)
        self.address = self.config.advertised_address or socket.gethostname()
        await self.metadata.register_agent(self.agent_id, self.address, self.config.kafka_address)
        replayed: dict[int, list[bytes]] = collections.defaultdict(list)
        if self.config.wal_enabled:
            self.wal = await WriteAheadLog.open(
                WalConfig(
                    directory=data_dir / "wal",
                    sync_policy=self.config.wal_sync_policy,
                    sync_interval_ms=self.config.wal_sync_interval_ms,
                    file_max_bytes=self.config.wal_file_max_bytes,
                    max_bytes=self.config.wal_max_bytes,
                )
            )
            for entry in self.wal.replay():
                replayed[entry.stream_id].append(entry.batch)
            report = self.wal.recovery_report
            if report.bytes_dropped:
                metrics.WAL_RECOVERY_DROPPED_BYTES.inc(report.bytes_dropped)
        self._ctx = PartitionContext(
            metadata=self.metadata,
            store=self.store,
            cache=self.cache,
            wal=self.wal,
            holder=self.agent_id,
            default_sync=self.config.wal_sync_policy,
            commit_on_all=self.config.commit_on_all,
            compression=self.config.segment_compression,
            upload_slots=asyncio.Semaphore(self.config.upload_concurrency),
            upload_retry_max_s=self.config.upload_retry_max_s,
            reader_cache_size=self.config.reader_cache_size,
            max_sealing_segments=self.config.max_sealing_segments,
        )
        await self.directory.sync_clock()
        await self._ensure_groups_topic()
        await self._reclaim_own()
        self._restore(replayed)
        await self._spread(hand_over=False)
        loops = (self._seal_loop(), self._lease_loop(), self._retention_loop(), self.backfill.run())
        self._tasks = [asyncio.create_task(coro) for coro in loops]
        self.ready = True

    def _restore(self, replayed: Mapping[int, list[bytes]]) -> None:
        """Puts WAL batches back behind the committed segments, densely, in WAL order."""
        by_stream = {p.stream_id: p for p in self._partitions.values()}
        for stream, batches in replayed.items():
            plog = by_stream.get(stream)
            if plog is None:
                # Not ours (deleted topic, or another agent leads it now): it cannot be placed.
                topic_id, partition = split_stream_id(stream)
                log.warning(
                    "dropping %d WAL batches of topic id %d partition %d: not led by this agent",
                    len(batches),
                    topic_id,
                    partition,
                )
                metrics.WAL_RECOVERY_DROPPED_BATCHES.inc(len(batches))
                if self.wal is not None:
                    self.wal.mark_committed(stream, LAST_POSSIBLE_OFFSET)
                continue
            for position, batch in enumerate(batches):
                if not plog.restore(batch, parse_header(batch)):
                    dropped = len(batches) - position
                    log.error(
                        "WAL batches of %s[%d] leave a gap after offset %d; dropping %d batches",
                        plog.topic.name,
                        plog.partition,
                        plog.high_watermark,
                        dropped,
                    )
                    metrics.WAL_RECOVERY_DROPPED_BATCHES.inc(dropped)
                    break
            plog.request_seal()

    async def _ensure_groups_topic(self) -> None:
        """Creates the internal groups topic once; another agent may be creating it too."""
        try:
            topic = await self.metadata.get_topic(self.GROUPS_TOPIC)
        except UnknownTopicError:
            try:
                topic = await self.metadata.create_topic(
                    self.GROUPS_TOPIC, self.config.group_partitions
                )
            except TopicExistsError:
                topic = await self.metadata.get_topic(self.GROUPS_TOPIC)
        self._group_partitions = topic.partitions

    async def _reclaim_own(self) -> None:
        """Takes back the partitions whose lease still names this agent (a restart), whatever
        the fair share: their WAL batches can only be put back by their leader."""
        topics = {t.name: t for t in await self.metadata.list_topics()}
        for lease in await self.metadata.list_leases(holder=self.agent_id):
            topic = topics.get(lease.topic)
            if topic is not None and lease.partition < topic.partitions:
                with contextlib.suppress(LeaseHeldError):
                    await self._claim(topic, lease.partition, "acquired")

    async def _claim(self, topic: Topic, partition: int, reason: str) -> PartitionLog:
        """Acquires the lease (raising the epoch) and loads the partition's committed state."""
        assert self._ctx is not None
        lease = await self.metadata.acquire_lease(
            topic.name, partition, self.agent_id, self.config.lease_ttl_ms
        )
        metrics.LEASE_CHANGES.labels(reason=reason).inc()
        state = await self.metadata.get_partition(topic.name, partition)
        segments = await self.metadata.list_segments(topic.name, partition)
        plog = PartitionLog(self._ctx, topic, partition, state, segments, lease.epoch)
        self._partitions[(topic.name, partition)] = plog
        task = asyncio.create_task(self._sweep_orphans(plog))
        task.add_done_callback(_log_failure)
        return plog

    async def _sweep_orphans(self, plog: PartitionLog) -> None:
        """Deletes uploads of earlier epochs that never got committed (crash or fencing)."""
        referenced = {s.object_key for s in plog.segments}
        prefix = partition_prefix(plog.topic.topic_id, plog.partition)
        for info in await self.store.list(prefix):
            parsed = parse_segment_key(info.key)
            # No writer of an older epoch can commit any more, so its unreferenced objects are dead.
            if parsed and parsed[1] < plog.epoch and info.key not in referenced:
                await self.store.delete(info.key)

    # ---------------------------------------------------------------- lookups
    async def partition(self, topic: str, partition: int) -> PartitionLog:
        """The log of ``topic[partition]``, claiming its lease when nobody holds it.

        Raises:
            NotLeaderError: another agent leads it (named in the error), or this agent is
                handing it over or has just handed it over.
            UnknownTopicError, UnknownPartitionError.
        """
        key = (topic, partition)
        plog = self._partitions.get(key)
        if plog is not None and plog.writable:
            return plog
        if plog is not None and not plog.fenced:
            raise NotLeaderError(topic, partition, "it is being handed over to another agent")
        lease = await self.metadata.get_lease(topic, partition)  # also checks that it exists
        previous = lease.holder if lease is not None else self.agent_id
        if previous != self.agent_id and lease is not None and lease.expires_at > self._now_ms():
            raise NotLeaderError(
                topic,
                partition,
                "another agent holds its lease",
                leader_agent=previous,
                leader_address=await self._address_of(previous),
            )
        given = self._handed_over.get(key)
        if given is not None and time.monotonic() - given < 2 * self.config.lease_ttl_ms / 1000:
            raise NotLeaderError(topic, partition, "it was handed over to another agent")
        async with self._claim_lock:
            plog = self._partitions.get(key)
            if plog is not None and plog.writable:
                return plog
            meta = await self.metadata.get_topic(topic)
            if not 0 <= partition < meta.partitions:
                raise UnknownPartitionError(f"topic {topic!r} has no partition {partition}")
            taken = previous != self.agent_id and previous not in self._alive
            try:
                return await self._claim(meta, partition, "expired_taken" if taken else "acquired")
            except LeaseHeldError as exc:
                agent, address = await self.leader_of(topic, partition) or ("", "")
                raise NotLeaderError(
                    topic, partition, str(exc), leader_agent=agent, leader_address=address
                ) from exc

    def local_partition(self, topic: str, partition: int) -> PartitionLog | None:
        """The log of a partition this agent leads (or is handing over); never claims."""
        plog = self._partitions.get((topic, partition))
        return plog if plog is not None and not plog.fenced else None

    def led_partitions(self) -> list[PartitionLog]:
        return [p for p in self._partitions.values() if not p.fenced]

    async def leader_of(self, topic: str, partition: int) -> tuple[str, str] | None:
        """(agent id, address) of the live lease holder, this agent included; None if free."""
        plog = self._partitions.get((topic, partition))
        if plog is not None and plog.writable:
            return self.agent_id, self.address
        lease = await self.metadata.get_lease(topic, partition)
        if lease is None or lease.expires_at <= self._now_ms():
            return None
        return lease.holder, await self._address_of(lease.holder)

    async def partition_leaders(self, topic: str) -> dict[int, tuple[str, str]]:
        """Partition -> (agent id, address) of every partition of ``topic`` with a live lease."""
        now = self._now_ms()
        leaders: dict[int, tuple[str, str]] = {}
        for lease in await self.metadata.list_leases():
            if lease.topic == topic and lease.expires_at > now:
                leaders[lease.partition] = (lease.holder, await self._address_of(lease.holder))
        return leaders

    async def _address_of(self, agent_id: str) -> str:
        return self.address if agent_id == self.agent_id else await self.directory.address(agent_id)

    def _now_ms(self) -> int:
        return self.directory.store_now_ms()

    # ------------------------------------------------------- group coordinators
    def coordinator_partition(self, group: str) -> int:
        """The partition of the groups topic whose leader coordinates ``group``."""
        return zlib.crc32(group.encode()) % self._group_partitions

    async def coordinator_of(self, group: str) -> tuple[str, str] | None:
        """(agent id, address) of the group's coordinator; None while nobody leads its slot."""
        return await self.leader_of(self.GROUPS_TOPIC, self.coordinator_partition(group))

    async def is_coordinator(self, group: str) -> bool:
        """True when this agent leads the group's partition (claimed now if it is free)."""
        try:
            await self.partition(self.GROUPS_TOPIC, self.coordinator_partition(group))
        except NotLeaderError:
            return False
        return True

    # ------------------------------------------------------------------ admin
    async def create_topic(
        self, name: str, partitions: int = 1, config: TopicConfig | None = None
    ) -> Topic:
        """Creates the topic and claims this agent's fair share of it at once."""
        topic = await self.metadata.create_topic(name, partitions, config or TopicConfig())
        await self._spread(hand_over=False)
        return topic

    async def update_topic_config(
        self, name: str, changes: Mapping[str, str | int | None]
    ) -> Topic:
        topic = await self.metadata.update_topic_config(name, changes)
        for (topic_name, _), plog in self._partitions.items():
            if topic_name == name:
                plog.topic = topic
        return topic

    async def add_partitions(self, name: str, total: int) -> Topic:
        topic = await self.metadata.add_partitions(name, total)
        for (topic_name, _), plog in self._partitions.items():
            if topic_name == name:
                plog.topic = topic
        return topic

    async def delete_topic(self, name: str) -> None:
        topic = await self.metadata.get_topic(name)
        for partition in range(topic.partitions):
            self._handed_over.pop((name, partition), None)
            plog = self._partitions.pop((name, partition), None)
            if plog is not None:
                await plog.close()
                if self.wal is not None:
                    self.wal.mark_committed(plog.stream_id, LAST_POSSIBLE_OFFSET)
        segments = await self.metadata.delete_topic(name)
        for segment in segments:
            self.cache.invalidate(segment.object_key)
        for partition in range(topic.partitions):
            for info in await self.store.list(partition_prefix(topic.topic_id, partition)):
                self.cache.invalidate(info.key)
                await self.store.delete(info.key)

    # ------------------------------------------------------------- background
    async def _seal_loop(self) -> None:
        interval = self.config.seal_check_interval_ms / 1000
        while True:
            now = time.monotonic()
            for plog in self.led_partitions():
                if plog.seal_due(now):
                    plog.ensure_flushing()
            metrics.OPEN_SEGMENT_BYTES.set(sum(p.memory_bytes for p in self._partitions.values()))
            await asyncio.sleep(interval)

    async def _lease_loop(self) -> None:
        interval = self.config.lease_ttl_ms / 3000
        while True:
            await asyncio.sleep(interval)
            await self._heartbeat()
            await self._renew_leases()
            metrics.LED_PARTITIONS.set(len(self.led_partitions()))
            try:
                await self._spread(hand_over=True)
            except Exception:
                log.exception("spreading partitions over the agents failed")

    async def _heartbeat(self) -> None:
        try:
            await self.metadata.heartbeat_agent(self.agent_id)
        except UnknownAgentError:  # removed as dead while paused: come back
            with contextlib.suppress(Exception):
                await self.metadata.register_agent(
                    self.agent_id, self.address, self.config.kafka_address
                )
        except Exception:
            log.warning("heartbeat of agent %s failed", self.agent_id, exc_info=True)

    async def _renew_leases(self) -> None:
        for plog in self.led_partitions():
            try:
                await self.metadata.renew_lease(
                    plog.topic.name,
                    plog.partition,
                    self.agent_id,
                    plog.epoch,
                    self.config.lease_ttl_ms,
                )
            except FencedError as exc:
                plog.fence(str(exc))
            except Exception:
                log.exception("lease renewal of %s[%d] failed", plog.topic.name, plog.partition)

    async def _spread(self, *, hand_over: bool) -> None:
        """One spreading round: claim up to the fair share, maybe hand one partition over."""
        ttl = self.config.lease_ttl_ms
        topics = {t.name: t for t in await self.metadata.list_topics()}
        leases = {
            (lease.topic, lease.partition): lease for lease in await self.metadata.list_leases()
        }
        agents = await self.metadata.list_agents(alive_within_ms=ttl)
        now = await self.directory.sync_clock()
        self.directory.remember(agents)
        self._alive = frozenset(a.agent_id for a in agents)
        cutoff = time.monotonic() - ttl / 1000
        self._handed_over = {k: t for k, t in self._handed_over.items() if t > cutoff - ttl / 1000}
        view = ClusterView(self.agent_id, topics, leases, self._alive, now, ttl)
        local = [key for key, plog in self._partitions.items() if plog.writable]
        plan = plan_spread(view, local)
        for claim in plan.claims:
            key = (claim.topic, claim.partition)
            if self._handed_over.get(key, float("-inf")) > cutoff:
                continue  # just given away: its taker needs a round to claim it
            async with self._claim_lock:
                plog = self._partitions.get(key)
                if plog is not None and not plog.fenced:
                    continue
                with contextlib.suppress(LeaseHeldError, UnknownTopicError, UnknownPartitionError):
                    await self._claim(topics[claim.topic], claim.partition, claim.reason)
        if hand_over:
            self._consider_hand_over(plan.hand_over)

    def _consider_hand_over(self, candidate: PartitionKey | None) -> None:
        """Starts a hand-over when two rounds in a row chose the same partition (hysteresis
        against a momentary view, such as an agent that is still starting)."""
        if self._hand_over_task is not None and not self._hand_over_task.done():
            return
        if candidate is None or candidate != self._hand_over_candidate:
            self._hand_over_candidate = candidate
            return
        self._hand_over_candidate = None
        plog = self._partitions.get(candidate)
        if plog is not None and plog.writable:
            self._hand_over_task = asyncio.create_task(self._hand_over(plog))
            self._hand_over_task.add_done_callback(_log_failure)

    async def _hand_over(self, plog: PartitionLog) -> None:
        """Stops appends, commits what memory holds, then releases the lease for the taker."""
        key = (plog.topic.name, plog.partition)
        plog.stop_appends("it is being handed over to another agent")
        try:
            async with asyncio.timeout(self.config.handover_timeout_s):
                await plog.flush()
        except TimeoutError:
            log.warning("hand-over of %s[%d] abandoned: its data is not committed", *key)
            plog.resume_appends()
            return
        if plog.fenced:
            return  # lost meanwhile; nothing left to give
        plog.fence("handed over to another agent", lost=False)
        self._handed_over[key] = time.monotonic()
        if self._partitions.get(key) is plog:
            del self._partitions[key]
        await plog.close()
        # Should the release fail, the lease simply expires and the taker waits one TTL longer.
        await self.metadata.release_lease(key[0], key[1], self.agent_id, plog.epoch)
        metrics.LEASE_CHANGES.labels(reason="handed_over").inc()
        log.info("handed %s[%d] over at offset %d", key[0], key[1], plog.high_watermark)

    async def _retention_loop(self) -> None:
        interval = self.config.retention_check_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            await self.apply_retention()

    async def apply_retention(self) -> int:
        """Runs retention on every led partition now; returns the number of deleted segments."""
        now_ms = int(time.time() * 1000)
        deleted = 0
        for plog in self.led_partitions():
            try:
                deleted += await plog.apply_retention(now_ms)
            except Exception:
                log.exception("retention of %s[%d] failed", plog.topic.name, plog.partition)
        return deleted

    # --------------------------------------------------------------- shutdown
    async def close(self, timeout_s: float = 30.0) -> None:
        """Seals and commits what is in memory, releases leases, closes the WAL and stores."""
        self.ready = False
        tasks = [*self._tasks, *([self._hand_over_task] if self._hand_over_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._hand_over_task = None
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*(p.flush() for p in self.led_partitions()))
        except TimeoutError:
            log.error(
                "shutdown: segments still uncommitted after %.0f s; the WAL keeps them", timeout_s
            )
        for plog in list(self._partitions.values()):
            await plog.close()
            if not plog.fenced:
                with contextlib.suppress(Exception):
                    await self.metadata.release_lease(
                        plog.topic.name, plog.partition, self.agent_id, plog.epoch
                    )
                    metrics.LEASE_CHANGES.labels(reason="released").inc()
        self._partitions.clear()
        if self.wal is not None:
            await self.wal.close()
        await self.metadata.close()
        await self.store.close()


def _persistent_agent_id(data_dir: Path) -> str:
    path = data_dir / "agent-id"
    if path.exists():
        return path.read_text().strip()
    agent_id = f"agent-{uuid.uuid4().hex[:12]}"
    path.write_text(agent_id + "\n")
    return agent_id


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("background task failed: %r", task.exception())
