"""The asyncio consumer: group membership or manual assignment, positions, fetch, commit.

Positions follow Kafka's rules: a partition starts at the group's committed offset, else at
``auto_offset_reset``; ``poll`` moves the position past what it returns; auto commit stores
positions every ``auto_commit_interval_ms`` (on the next poll), before partitions are given
up in a rebalance, and on close, so a record another member resumes from is never one this
member already returned.

``poll_arrow`` is the fast path: fetched batches are decoded to Arrow columns and returned as
one table without creating a Python object per record. ``poll`` builds ConsumerRecords from
those same columns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping

import pyarrow as pa
from streamhouse.broker.client.channels import Channels
from streamhouse.broker.client.cluster import Cluster
from streamhouse.broker.client.decode import records_from_table
from streamhouse.broker.client.errors import (
    NoOffsetError,
    OffsetOutOfRangeError,
    StreamHouseError,
)
from streamhouse.broker.client.fetcher import Fetched, Fetcher
from streamhouse.broker.client.group import GroupMembership
from streamhouse.broker.client.models import ConsumerRecord, TopicPartition
from streamhouse.broker.client.options import (
    ASSIGNORS,
    AUTO_OFFSET_RESETS,
    check_choice,
    check_positive,
    parse_servers,
)
from streamhouse.broker.client.retry import RetryPolicy
from streamhouse.broker.rpc.v1 import broker_pb2 as pb

log = logging.getLogger("streamhouse.client.consumer")
MiB = 1024 * 1024
IDLE_WAIT_S = 0.1  # how often a member without partitions looks for a new assignment


class AsyncConsumer:
    """Reads records from StreamHouse topics (asyncio).

    Args:
        servers: ``host:port`` of one or more agents (comma-separated) to bootstrap from.
        group_id: the consumer group; needed for ``subscribe``, commits and committed offsets.
        client_id: shown in group descriptions.
        auto_offset_reset: where a partition without a committed offset starts: "latest",
            "earliest", or "error" (raise NoOffsetError).
        enable_auto_commit, auto_commit_interval_ms: commit positions periodically, before a
            rebalance and on close.
        session_timeout_ms, heartbeat_interval_ms, rebalance_timeout_ms: group liveness.
        assignor: "range", "roundrobin" or "sticky" (computed by the server).
        fetch_max_bytes, max_partition_fetch_bytes, fetch_max_wait_ms: fetch sizing and the
            long-poll wait.
        retries, retry_backoff_ms, retry_backoff_max_ms, request_timeout_ms: as the producer's.
    """

    def __init__(
        self,
        servers: str = "127.0.0.1:50051",
        *,
        group_id: str | None = None,
        client_id: str = "streamhouse-python",
        auto_offset_reset: str = "latest",
        enable_auto_commit: bool = True,
        auto_commit_interval_ms: int = 5000,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 1000,
        rebalance_timeout_ms: int = 30_000,
        assignor: str = "range",
        fetch_max_bytes: int = 8 * MiB,
        max_partition_fetch_bytes: int = 2 * MiB,
        fetch_max_wait_ms: int = 500,
        retries: int = 5,
        retry_backoff_ms: int = 100,
        retry_backoff_max_ms: int = 2000,
        request_timeout_ms: int = 30_000,
    ) -> None:
        if group_id is not None and (not isinstance(group_id, str) or not group_id):
            raise ValueError(f"group_id must be a non-empty string or None, not {group_id!r}")
        self.servers = parse_servers(servers)
        self.group_id = group_id
        self.client_id = client_id
        self._reset = check_choice("auto_offset_reset", auto_offset_reset, AUTO_OFFSET_RESETS)
        self._assignor = check_choice("assignor", assignor, ASSIGNORS)
        self._auto_commit = bool(enable_auto_commit) and group_id is not None
        self._auto_commit_s = (
            check_positive("auto_commit_interval_ms", auto_commit_interval_ms) / 1000
        )
        self._session_timeout_ms = check_positive("session_timeout_ms", session_timeout_ms)
        self._heartbeat_ms = check_positive("heartbeat_interval_ms", heartbeat_interval_ms)
        self._rebalance_timeout_ms = check_positive("rebalance_timeout_ms", rebalance_timeout_ms)
        self._fetch_max_wait_ms = check_positive(
            "fetch_max_wait_ms", fetch_max_wait_ms, zero_ok=True
        )
        self._retry = RetryPolicy(
            check_positive("retries", retries, zero_ok=True),
            check_positive("retry_backoff_ms", retry_backoff_ms, zero_ok=True),
            check_positive("retry_backoff_max_ms", retry_backoff_max_ms, zero_ok=True),
        )
        request_timeout_s = check_positive("request_timeout_ms", request_timeout_ms) / 1000
        self._channels = Channels(
            reconnect_backoff_ms=retry_backoff_ms, max_reconnect_backoff_ms=retry_backoff_max_ms
        )
        self._cluster = Cluster(self._channels, self.servers, self._retry, request_timeout_s)
        self._fetcher = Fetcher(
            self._cluster,
            fetch_max_bytes=check_positive("fetch_max_bytes", fetch_max_bytes),
            max_partition_fetch_bytes=check_positive(
                "max_partition_fetch_bytes", max_partition_fetch_bytes
            ),
            request_timeout_s=request_timeout_s,
        )
        self._membership: GroupMembership | None = None
        self._manual: frozenset[TopicPartition] | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._buffers: dict[TopicPartition, tuple[pa.Table, int]] = {}
        self._committed_positions: dict[TopicPartition, int] = {}
        self._manual_epoch = 0
        self._next_auto_commit = 0.0
        self._fetch_failures = 0
        self._closed = False

    async def __aenter__(self) -> AsyncConsumer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -------------------------------------------------------------------------- assignment
    def subscribe(self, topics: Iterable[str] | str) -> None:
        """Joins the group for ``topics`` (on the next poll); the server assigns partitions."""
        self._check_open()
        if self.group_id is None:
            raise ValueError("subscribe needs a group_id; use assign() without a group")
        if self._manual is not None:
            raise ValueError("this consumer uses assign(); it cannot also subscribe")
        names = [topics] if isinstance(topics, str) else sorted(set(topics))
        if not names or not all(isinstance(t, str) and t for t in names):
            raise ValueError(f"subscribe needs topic names, not {topics!r}")
        if self._membership is None:
            self._membership = GroupMembership(
                self._cluster,
                self.group_id,
                client_id=self.client_id,
                assignor=self._assignor,
                session_timeout_ms=self._session_timeout_ms,
                heartbeat_interval_ms=self._heartbeat_ms,
                rebalance_timeout_ms=self._rebalance_timeout_ms,
                on_revoke=self._on_revoke,
                on_assign=self._on_assign,
            )
        self._membership.subscribe(names)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Reads exactly these partitions, without group membership."""
        self._check_open()
        if self._membership is not None:
            raise ValueError("this consumer subscribed to a group; it cannot also assign()")
        wanted = frozenset(TopicPartition(*tp) for tp in partitions)
        for tp in wanted:
            if (
                not isinstance(tp.topic, str)
                or not isinstance(tp.partition, int)
                or tp.partition < 0
            ):
                raise ValueError(f"not a topic partition: {tp!r}")
        self._manual = wanted
        self._manual_epoch += 1
        self._forget(set(self._positions) - wanted)

    def assignment(self) -> set[TopicPartition]:
        if self._manual is not None:
            return set(self._manual)
        if self._membership is not None:
            return set(self._membership.assignment)
        return set()

    # -------------------------------------------------------------------------------- poll
    async def poll(
        self, timeout_ms: int = 1000, max_records: int | None = None
    ) -> list[ConsumerRecord]:
        """Records after the current positions (possibly none after ``timeout_ms``)."""
        if max_records is not None:
            check_positive("max_records", max_records)
        table = await self._poll_table(timeout_ms, max_records)
        return records_from_table(table) if table is not None else []

    async def poll_arrow(self, timeout_ms: int = 1000) -> pa.Table | None:
        """Like ``poll``, as one Arrow table (topic + ``ARROW_SCHEMA`` columns); None if empty."""
        return await self._poll_table(timeout_ms, None)

    async def _poll_table(self, timeout_ms: int, max_records: int | None) -> pa.Table | None:
        self._check_open()
        check_positive("timeout_ms", timeout_ms, zero_ok=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        while True:
            await self._prepare()
            table = self._take(max_records)
            if table is not None:
                return table
            remaining = deadline - loop.time()
            epoch = self._epoch()
            wanted = {tp: self._positions[tp] for tp in self.assignment() if tp in self._positions}
            if not wanted:
                if remaining <= 0:
                    return None
                await asyncio.sleep(min(remaining, IDLE_WAIT_S))
                continue
            wait_ms = int(min(self._fetch_max_wait_ms, max(remaining, 0) * 1000))
            results = await self._fetcher.fetch(wanted, wait_ms)
            if epoch != self._epoch():
                continue  # a rebalance or assign() raced the fetch: its records may not be ours
            failed = await self._apply(results)
            table = self._take(max_records)
            if table is not None:
                return table
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            if failed:
                await asyncio.sleep(min(remaining, self._retry.delay(self._fetch_failures - 1)))

    def _epoch(self) -> tuple[int, int]:
        membership = self._membership.epoch if self._membership is not None else 0
        return membership, self._manual_epoch

    async def _prepare(self) -> None:
        if self._membership is not None:
            await self._membership.ensure_active()
        missing = [tp for tp in self.assignment() if tp not in self._positions]
        if missing:
            await self._resolve_positions(missing)
        if self._auto_commit and asyncio.get_running_loop().time() >= self._next_auto_commit:
            await self._commit_quietly()

    async def _apply(self, results: list[Fetched]) -> bool:
        """Buffers fetched records; handles errors. Returns whether a retryable error happened."""
        failed = False
        for item in results:
            if self._positions.get(item.tp) != item.position or item.tp in self._buffers:
                continue  # seeked meanwhile, or data already buffered
            if item.error is None:
                if item.table is not None and item.table.num_rows:
                    self._buffers[item.tp] = (item.table, item.next_position)
                elif item.next_position > item.position:
                    self._positions[item.tp] = item.next_position  # only control batches
                continue
            error = item.error
            if isinstance(error, OffsetOutOfRangeError):
                if self._reset == "error":
                    raise error
                log.warning("%s: position %d is out of range; resetting to %s",
                            item.tp, item.position, self._reset)  # fmt: skip
                reset = await self._fetcher.list_offsets([item.tp], self._reset)
                self._positions[item.tp] = reset.get(item.tp) or 0
            elif error.retryable:
                failed = True
            else:
                raise error
        if failed:
            self._fetch_failures += 1
            if self._fetch_failures > self._retry.retries:
                log.warning("fetching keeps failing (%d attempts): %s", self._fetch_failures,
                            next(r.error for r in results if r.error is not None))  # fmt: skip
        else:
            self._fetch_failures = 0
        return failed

    def _take(self, max_records: int | None) -> pa.Table | None:
        """Moves buffered records out (oldest partition first) and advances positions."""
        tables = []
        count = 0
        for tp in list(self._buffers):
            room = None if max_records is None else max_records - count
            if room == 0:
                break
            table, end = self._buffers.pop(tp)
            if room is None or table.num_rows <= room:
                tables.append(table)
                self._positions[tp] = end
                count += table.num_rows
            else:
                rest = table.slice(room)
                tables.append(table.slice(0, room))
                self._buffers[tp] = (rest, end)  # re-inserted last: other partitions go next
                self._positions[tp] = rest.column("offset")[0].as_py()
                count += room
        if not tables:
            return None
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    # ---------------------------------------------------------------------------- positions
    async def _resolve_positions(self, tps: list[TopicPartition]) -> None:
        committed: dict[TopicPartition, int] = {}
        if self.group_id is not None:
            committed = await self._fetch_committed({tp.topic for tp in tps})
        rest = []
        for tp in tps:
            if tp in committed:
                self._positions[tp] = committed[tp]
                self._committed_positions[tp] = committed[tp]
            else:
                rest.append(tp)
        if not rest:
            return
        if self._reset == "error":
            raise NoOffsetError(
                f"no committed offset for {sorted(rest)} and auto_offset_reset is 'error'"
            )
        offsets = await self._fetcher.list_offsets(rest, self._reset)
        for tp in rest:
            self._positions[tp] = offsets.get(tp) or 0

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """The next poll returns ``tp``'s records from ``offset`` on."""
        tp = TopicPartition(*tp)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset must be an int >= 0, not {offset!r}")
        if tp not in self.assignment():
            raise ValueError(f"{tp} is not assigned to this consumer")
        self._buffers.pop(tp, None)
        self._positions[tp] = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        await self._seek_to("earliest", tps)

    async def seek_to_end(self, *tps: TopicPartition) -> None:
        await self._seek_to("latest", tps)

    async def _seek_to(self, spec: str, tps: tuple[TopicPartition, ...]) -> None:
        if self._membership is not None:
            await self._membership.ensure_active()
        targets = [TopicPartition(*tp) for tp in tps] or sorted(self.assignment())
        offsets = await self._fetcher.list_offsets(targets, spec)
        for tp in targets:
            self.seek(tp, offsets.get(tp) or 0)

    def position(self, tp: TopicPartition) -> int | None:
        """The offset of the next record ``poll`` returns for ``tp``; None until it is known
        (after the first poll or a seek)."""
        return self._positions.get(TopicPartition(*tp))

    async def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int | None]:
        """The first offset whose timestamp is at or after each given one (None: none is)."""
        by_time: dict[int, list[TopicPartition]] = {}
        for tp, ts in timestamps.items():
            by_time.setdefault(int(ts), []).append(TopicPartition(*tp))
        out: dict[TopicPartition, int | None] = {}
        for ts, tps in by_time.items():
            found = await self._fetcher.list_offsets(tps, "timestamp", ts)
            out.update({tp: found.get(tp) for tp in tps})
        return out

    # ------------------------------------------------------------------------------ commits
    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Stores ``offsets`` (default: the current positions) as the group's progress."""
        self._check_open()
        if self.group_id is None:
            raise ValueError("commit needs a group_id")
        if offsets is None:
            wanted = {tp: self._positions[tp] for tp in self.assignment() if tp in self._positions}
        else:
            wanted = {TopicPartition(*tp): int(offset) for tp, offset in offsets.items()}
        if not wanted:
            return
        if self._membership is not None:
            await self._membership.commit(wanted)
        else:  # an outsider's commit (manual assignment): allowed while the group is empty
            request = pb.CommitOffsetsRequest(
                group=self.group_id,
                generation_id=-1,
                offsets=[
                    pb.OffsetEntry(topic=tp.topic, partition=tp.partition, offset=o)
                    for tp, o in wanted.items()
                ],
            )
            await self._cluster.group_call(self.group_id, "CommitOffsets", request)
        self._committed_positions.update(wanted)

    async def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset for ``tp`` (None if nothing is committed)."""
        if self.group_id is None:
            raise ValueError("committed offsets need a group_id")
        tp = TopicPartition(*tp)
        return (await self._fetch_committed({tp.topic})).get(tp)

    async def _fetch_committed(self, topics: set[str]) -> dict[TopicPartition, int]:
        assert self.group_id is not None
        topic = next(iter(topics)) if len(topics) == 1 else ""
        response = await self._cluster.group_call(
            self.group_id, "FetchOffsets", pb.FetchOffsetsRequest(group=self.group_id, topic=topic)
        )
        return {
            TopicPartition(e.topic, e.partition): e.offset
            for e in response.offsets
            if e.topic in topics and e.offset >= 0
        }

    async def _commit_quietly(self, tps: Iterable[TopicPartition] | None = None) -> None:
        """Auto commit: positions that moved since the last commit; failures only logged."""
        self._next_auto_commit = asyncio.get_running_loop().time() + self._auto_commit_s
        scope = self.assignment() if tps is None else set(tps)
        changed = {
            tp: offset
            for tp, offset in self._positions.items()
            if tp in scope and self._committed_positions.get(tp) != offset
        }
        if not changed:
            return
        try:
            await self.commit(changed)
        except StreamHouseError as exc:
            log.warning("auto commit of %d partitions failed: %s", len(changed), exc)

    async def _on_revoke(self, partitions: frozenset[TopicPartition]) -> None:
        if self._auto_commit:
            await self._commit_quietly(partitions)

    async def _on_assign(self, partitions: frozenset[TopicPartition]) -> None:
        # Start every partition from the committed offsets again: a partition kept through
        # the rebalance may have been consumed by another member in between.
        self._forget(set(self._positions) | set(self._buffers))

    def _forget(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._positions.pop(tp, None)
            self._buffers.pop(tp, None)
            self._committed_positions.pop(tp, None)

    # -------------------------------------------------------------------------------- close
    async def close(self) -> None:
        """Commits (with auto commit), leaves the group and disconnects."""
        if self._closed:
            return
        try:
            if self._auto_commit and (self._membership is None or self._membership.active):
                await self._commit_quietly()
        finally:
            self._closed = True
            if self._membership is not None:
                await self._membership.leave()
            await self._channels.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StreamHouseError("the consumer is closed")
