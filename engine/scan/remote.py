"""Partitions another agent leads, snapshotted and read for a point-in-time scan.

A query may reach any agent, but only a partition's leader holds its uncommitted tail (memory
and WAL). For a partition led elsewhere the snapshot is put together from two sources, read in
this order so the second always covers the first:

1. the metadata store: the partition's committed offset, then its committed segments (object
   keys, offsets, timestamps), read from the object store exactly like local ones (companions
   first) by ``TopicScan``;
2. the leader named by the partition's live lease: one gRPC ``Fetch`` per leader for all of its
   partitions at their committed offsets, which answers each high watermark and log start and
   brings the first bytes of the tail along (:data:`SNAPSHOT_PARTITION_BYTES` per partition).
   The rest of the tail is fetched from the leader when the scan reaches it.

A query never moves leadership: a partition nobody leads (its lease expired with its agent) is
read up to its committed offset only, which is what a new leader will start from, and a warning
is logged. An answer that names a new leader (a hand-over) is followed within the deadline; a
leader that cannot be reached within :data:`REMOTE_TIMEOUT_S` fails the query with
:class:`RemotePartitionError`, naming the partition and the agent.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from streamhouse.broker.client.channels import Channels
from streamhouse.broker.client.errors import NotLeaderError as NotLeaderReply
from streamhouse.broker.client.errors import StreamHouseError, from_proto
from streamhouse.broker.log import LogManager
from streamhouse.broker.log.errors import NotLeaderError
from streamhouse.broker.metadata import PartitionState, SegmentRecord
from streamhouse.broker.records import parse_header
from streamhouse.broker.rpc.v1 import broker_pb2 as pb

from .plan import PartitionSnapshot, snapshot_of

log = logging.getLogger("streamhouse.engine")

REMOTE_TIMEOUT_S = 5.0  # one call to a leader, and the whole snapshot's leader lookups
SNAPSHOT_PARTITION_BYTES = 1024 * 1024  # tail bytes the snapshot call brings per partition
SNAPSHOT_RESPONSE_BYTES = 8 * 1024 * 1024  # ... and per leader (bounds a scan's memory)
RETRY_DELAY_S = 0.2  # between leader lookups while a partition changes hands

# One set of gRPC channels per log manager (one event loop), shared by all of its queries.
_CHANNELS: weakref.WeakKeyDictionary[LogManager, Channels] = weakref.WeakKeyDictionary()


class RemotePartitionError(NotLeaderError):
    """A partition led by another agent could not be read from that agent.

    A NotLeaderError, so the REST and gRPC layers answer UNAVAILABLE (HTTP 503) with the
    leader's address: the query may succeed once the leader is back or its lease has moved.
    """

    def __init__(self, topic: str, partition: int, agent: str, address: str, detail: str):
        super().__init__(topic, partition, leader_agent=agent, leader_address=address)
        where = f"agent {agent!r} at {address}" if address else f"agent {agent!r}"
        self.args = (f"cannot read {topic}[{partition}] from its leader, {where}: {detail}",)


class TailSource(Protocol):
    """Reads a partition's batches from an offset: a local ``PartitionLog`` or a remote tail."""

    async def read(self, offset: int, max_bytes: int) -> list[bytes]: ...


@dataclass(frozen=True)
class RemoteSnapshot:
    """Snapshots of partitions led elsewhere, and where their uncommitted tails are read."""

    snapshots: tuple[PartitionSnapshot, ...]
    tails: dict[int, TailSource]
    leaderless: tuple[int, ...]  # read up to their committed offset only


class RemoteTail:
    """The uncommitted tail of a partition led by another agent, fetched from it with gRPC."""

    def __init__(
        self,
        manager: LogManager,
        topic: str,
        partition: int,
        leader: tuple[str, str],
        head: Sequence[bytes],
        timeout_s: float,
    ) -> None:
        self._manager = manager
        self._topic = topic
        self._partition = partition
        self._leader = leader
        self._head = list(head)  # what the snapshot call brought, from the committed offset
        self._timeout_s = timeout_s

    async def read(self, offset: int, max_bytes: int) -> list[bytes]:
        """Batches from ``offset`` on (the first may start before it), like PartitionLog.read."""
        head = self._take_head(offset)
        if head:
            return head
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        while True:
            address = self._leader[1]
            try:
                return await _fetch_one(
                    self._manager, address, self._topic, self._partition, offset, max_bytes,
                    self._timeout_s,
                )  # fmt: skip
            except NotLeaderReply as exc:  # handed over since the snapshot: ask the new leader
                if asyncio.get_running_loop().time() > deadline:
                    raise self._error(f"leadership is moving: {exc}") from exc
            except StreamHouseError as exc:
                raise self._error(str(exc)) from exc
            await asyncio.sleep(RETRY_DELAY_S)
            leader = await self._manager.leader_of(self._topic, self._partition)
            if leader is None:
                raise self._error("its lease has expired and no agent leads it yet")
            if leader[0] == self._manager.agent_id:
                local = self._manager.local_partition(self._topic, self._partition)
                if local is None:
                    raise self._error("this agent is taking it over; run the query again")
                return await local.read(offset, max_bytes)
            self._leader = leader

    def _take_head(self, offset: int) -> list[bytes]:
        """The prefetched batches from ``offset`` on, when they start at or before it."""
        kept = [b for b in self._head if parse_header(b).last_offset >= offset]
        self._head = []  # read once: the scan moves forward, and the memory is freed
        if kept and parse_header(kept[0]).base_offset <= offset:
            return kept
        return []

    def _error(self, detail: str) -> RemotePartitionError:
        agent, address = self._leader
        return RemotePartitionError(self._topic, self._partition, agent, address, detail)


async def snapshot_remote(
    manager: LogManager,
    topic: str,
    partitions: Sequence[int],
    *,
    timeout_s: float = REMOTE_TIMEOUT_S,
) -> RemoteSnapshot:
    """Snapshots ``partitions`` (none led here when the caller looked) without claiming any.

    Raises:
        RemotePartitionError: a leader did not answer within ``timeout_s``, or refused.
    """
    if not partitions:
        return RemoteSnapshot((), {}, ())
    committed = await _committed(manager, topic, partitions)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    snapshots: dict[int, PartitionSnapshot] = {}
    tails: dict[int, TailSource] = {}
    leaderless: list[int] = []
    pending = sorted(partitions)
    while pending:
        leaders = await manager.partition_leaders(topic)
        by_leader: dict[tuple[str, str], list[int]] = {}
        for p in pending:
            local = manager.local_partition(topic, p)  # claimed here since the caller looked
            leader = leaders.get(p)
            if local is not None:
                snapshots[p], tails[p] = snapshot_of(local), local
            elif leader is None or leader[0] == manager.agent_id:
                # Nobody leads it (a lease naming this agent without a log here is a finished
                # hand-over whose release failed): everything it holds is what is committed.
                state, segments = committed[p]
                snapshots[p] = _snapshot(p, state, segments, state.next_offset)
                leaderless.append(p)
            else:
                by_leader.setdefault(leader, []).append(p)
        answers = await asyncio.gather(
            *(
                _fetch_heads(manager, leader, topic, group, committed, timeout_s)
                for leader, group in by_leader.items()
            )
        )
        moving: list[int] = []
        for leader, answer in zip(by_leader, answers, strict=True):
            for p, item in answer.items():
                if item is None:
                    moving.append(p)
                    continue
                state, segments = committed[p]
                snap = _snapshot(p, state, segments, item.high_watermark, item.log_start_offset)
                snapshots[p] = snap
                tails[p] = RemoteTail(manager, topic, p, leader, item.batches, timeout_s)
        pending = sorted(moving)
        if pending:
            if loop.time() > deadline:
                agent, address = leaders.get(pending[0], ("", ""))
                raise RemotePartitionError(
                    topic, pending[0], agent, address, "its leadership kept moving"
                )
            await asyncio.sleep(RETRY_DELAY_S)
            # A hand-over commits what its leader held: read the committed state again.
            committed.update(await _committed(manager, topic, pending))
    if leaderless:
        log.warning(
            "no agent leads partitions %s of %s: the query reads what is committed of them",
            sorted(leaderless),
            topic,
        )
    ordered = tuple(snapshots[p] for p in sorted(snapshots))
    return RemoteSnapshot(ordered, tails, tuple(sorted(leaderless)))


async def _committed(
    manager: LogManager, topic: str, partitions: Sequence[int]
) -> dict[int, tuple[PartitionState, list[SegmentRecord]]]:
    """Each partition's committed offset, then its segments: read after the offset, the
    segments cover it even when a commit lands in between (later ones are ignored)."""
    states = {s.partition: s for s in await manager.metadata.list_partitions(topic)}
    segments = await asyncio.gather(*(manager.metadata.list_segments(topic, p) for p in partitions))
    return {p: (states[p], segs) for p, segs in zip(partitions, segments, strict=True)}


def _snapshot(
    partition: int,
    state: PartitionState,
    segments: Sequence[SegmentRecord],
    high_watermark: int,
    leader_log_start: int = 0,
) -> PartitionSnapshot:
    log_start = max(state.log_start_offset, leader_log_start)
    return PartitionSnapshot(
        partition=partition,
        log_start_offset=log_start,
        committed_offset=state.next_offset,
        # The leader's watermark is never below what it had committed before we asked.
        high_watermark=max(high_watermark, state.next_offset),
        segments=tuple(s for s in segments if s.last_offset >= log_start),
    )


def _channels(manager: LogManager) -> Channels:
    channels = _CHANNELS.get(manager)
    if channels is None:
        channels = _CHANNELS[manager] = Channels()
    return channels


async def _fetch_heads(
    manager: LogManager,
    leader: tuple[str, str],
    topic: str,
    partitions: list[int],
    committed: dict[int, tuple[PartitionState, list[SegmentRecord]]],
    timeout_s: float,
) -> dict[int, pb.FetchedPartition | None]:
    """One Fetch to ``leader`` at the partitions' committed offsets; None: not its any more."""
    agent, address = leader
    if not address:
        raise RemotePartitionError(
            topic, partitions[0], agent, address, "the agent has no registered address"
        )
    request = pb.FetchRequest(
        topic=topic,
        partitions=[
            pb.FetchPartition(
                partition=p,
                offset=committed[p][0].next_offset,
                max_bytes=SNAPSHOT_PARTITION_BYTES,
            )
            for p in partitions
        ],
        max_bytes=SNAPSHOT_RESPONSE_BYTES,
        max_wait_ms=0,
    )
    try:
        response = await _channels(manager).call(address, "fetch", "Fetch", request, timeout_s)
    except NotLeaderReply:
        return dict.fromkeys(partitions)
    except StreamHouseError as exc:
        raise RemotePartitionError(topic, partitions[0], agent, address, str(exc)) from exc
    asked = set(partitions)
    out: dict[int, pb.FetchedPartition | None] = {}
    for item in response.partitions:
        if item.partition not in asked:
            continue  # not asked for
        error = from_proto(item.error, address) if item.HasField("error") else None
        if isinstance(error, NotLeaderReply):
            out[item.partition] = None
        elif error is not None:
            raise RemotePartitionError(topic, item.partition, agent, address, str(error))
        else:
            out[item.partition] = item
    missing = [p for p in partitions if p not in out]
    if missing:
        raise RemotePartitionError(
            topic, missing[0], agent, address, "the leader's answer left the partition out"
        )
    return out


async def _fetch_one(
    manager: LogManager,
    address: str,
    topic: str,
    partition: int,
    offset: int,
    max_bytes: int,
    timeout_s: float,
) -> list[bytes]:
    request = pb.FetchRequest(
        topic=topic,
        partitions=[pb.FetchPartition(partition=partition, offset=offset, max_bytes=max_bytes)],
        max_bytes=max_bytes,
        max_wait_ms=0,
    )
    response = await _channels(manager).call(address, "fetch", "Fetch", request, timeout_s)
    for item in response.partitions:
        if item.partition == partition:
            error = from_proto(item.error, address) if item.HasField("error") else None
            if error is not None:
                raise error
            return list(item.batches)
    raise StreamHouseError(f"the answer of {address} left {topic}[{partition}] out")
