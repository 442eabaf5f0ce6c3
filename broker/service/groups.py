"""Group operations that need the log as well as the coordinator: lag, offset resets, routing.

A group is coordinated by the agent that leads its slot of the internal groups topic, so every
agent gives the same answer to "who coordinates g" and a dead coordinator's groups move with its
leases. End offsets of partitions led elsewhere are asked of their leader over gRPC.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from streamhouse.broker.groups.coordinator import GroupCoordinator, GroupDescription
from streamhouse.broker.groups.protocol import decode_assignment
from streamhouse.broker.log import NotLeaderError
from streamhouse.broker.metadata import InvalidRequestError, UnknownPartitionError
from streamhouse.broker.service import metrics
from streamhouse.broker.service.broker import BrokerService


class OffsetResetSpec(enum.StrEnum):
    EARLIEST = "earliest"
    LATEST = "latest"
    OFFSET = "offset"
    TIMESTAMP = "timestamp"


class NotCoordinatorError(Exception):
    """This agent does not coordinate the group; ``leader_address`` names the one that does."""

    def __init__(self, group: str, leader_address: str) -> None:
        where = f"; ask {leader_address}" if leader_address else "; no agent does yet, retry"
        super().__init__(f"this agent does not coordinate group {group!r}{where}")
        self.leader_address = leader_address


class GroupActiveError(Exception):
    """Offsets of a group with live members cannot be reset (Kafka refuses it too)."""


@dataclass(frozen=True)
class GroupLag:
    topic: str
    partition: int
    committed_offset: int  # -1: nothing committed
    end_offset: int
    lag: int
    member_id: str = ""


@dataclass(frozen=True)
class GroupDetails:
    description: GroupDescription
    assignments: dict[str, dict[str, list[int]]]  # member id -> topic -> partitions
    lags: list[GroupLag]

    @property
    def total_lag(self) -> int:
        return sum(lag.lag for lag in self.lags)


class GroupService:
    def __init__(self, broker: BrokerService, coordinator: GroupCoordinator) -> None:
        self.broker = broker
        self.coordinator = coordinator
        self.manager = broker.manager

    async def check_coordinator(self, group: str) -> None:
        if not group:
            raise InvalidRequestError("a group id must not be empty")
        if not await self.manager.is_coordinator(group):
            leader = await self.manager.coordinator_of(group)
            raise NotCoordinatorError(group, leader[1] if leader else "")

    async def coordinator_address(self, group: str) -> tuple[str, str]:
        if await self.manager.is_coordinator(group):
            return self.manager.agent_id, self.manager.config.advertised_address
        leader = await self.manager.coordinator_of(group)
        if leader is None:
            raise NotCoordinatorError(group, "")
        return leader

    async def describe(self, group: str) -> GroupDetails:
        description = await self.coordinator.describe_group(group)
        assignments: dict[str, dict[str, list[int]]] = {}
        owner: dict[tuple[str, int], str] = {}
        for member in description.members:
            parts = _decode(member.assignment)
            assignments[member.member_id] = parts
            for topic, partitions in parts.items():
                for partition in partitions:
                    owner[(topic, partition)] = member.member_id
        committed = {
            (c.topic, c.partition): c.offset for c in await self.coordinator.fetch_offsets(group)
        }
        keys = sorted(set(committed) | set(owner))
        ends = await self._end_offsets(keys)
        lags = []
        for topic, partition in keys:
            end = ends.get((topic, partition), -1)
            done = committed.get((topic, partition), -1)
            lag = max(end - done, 0) if done >= 0 and end >= 0 else max(end, 0)
            lags.append(
                GroupLag(topic, partition, done, end, lag, owner.get((topic, partition), ""))
            )
            metrics.GROUP_LAG.labels(group, topic, str(partition)).set(lag)
        return GroupDetails(description, assignments, lags)

    async def commit(
        self,
        group: str,
        member_id: str,
        generation_id: int,
        offsets: Sequence[tuple[str, int, int, str]],
    ) -> None:
        await self.coordinator.commit_offsets(group, member_id, generation_id, offsets)
        for topic, partition, offset, _ in offsets:
            local = self.manager.local_partition(topic, partition)
            if local is not None:
                lag = max(local.high_watermark - offset, 0)
                metrics.GROUP_LAG.labels(group, topic, str(partition)).set(lag)

    async def reset_offsets(
        self,
        group: str,
        topic: str,
        partitions: Sequence[int],
        spec: OffsetResetSpec,
        value: int = 0,
        *,
        dry_run: bool = False,
    ) -> list[tuple[str, int, int]]:
        """New positions ``(topic, partition, offset)``; committed unless ``dry_run``."""
        if self.coordinator.is_active(group):
            raise GroupActiveError(
                f"group {group!r} has active members; stop its consumers before resetting offsets"
            )
        meta = await self.broker.metadata.get_topic(topic)
        wanted = list(partitions) or list(range(meta.partitions))
        for partition in wanted:
            if not 0 <= partition < meta.partitions:
                raise UnknownPartitionError(f"topic {topic!r} has no partition {partition}")
        keys = [(topic, p) for p in wanted]
        if spec is OffsetResetSpec.OFFSET:
            if value < 0:
                raise InvalidRequestError(f"offset {value} is negative")
            starts = await self._offsets(keys, "earliest")
            ends = await self._offsets(keys, "latest")
            target = {k: min(max(value, starts[k]), ends[k]) for k in keys}
        elif spec is OffsetResetSpec.TIMESTAMP:
            found = await self._offsets(keys, "timestamp", value)
            ends = await self._offsets(keys, "latest")
            target = {k: ends[k] if found[k] < 0 else found[k] for k in keys}
        else:
            target = await self._offsets(keys, spec.value)
        result = [(t, p, target[(t, p)]) for t, p in keys]
        if not dry_run:
            await self.coordinator.commit_offsets(
                group, "", -1, [(t, p, o, "") for t, p, o in result]
            )
        return result

    async def _end_offsets(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        try:
            return await self._offsets(keys, "latest")
        except Exception:
            # Lag is best effort: fall back to what the metadata says is committed.
            out = {}
            for topic, partition in keys:
                state = await self.broker.metadata.get_partition(topic, partition)
                out[(topic, partition)] = state.next_offset
            return out

    async def _offsets(
        self, keys: Sequence[tuple[str, int]], spec: str, timestamp_ms: int = 0
    ) -> dict[tuple[str, int], int]:
        """Offsets by spec from each partition's leader: local logs directly, others over gRPC."""
        by_topic: dict[str, list[int]] = {}
        for topic, partition in keys:
            by_topic.setdefault(topic, []).append(partition)
        out: dict[tuple[str, int], int] = {}
        for topic, partitions in by_topic.items():
            results = await self.broker.list_offsets(topic, partitions, spec, timestamp_ms)
            for partition, offset, error in results:
                if isinstance(error, NotLeaderError) and getattr(error, "leader_address", ""):
                    offset = await _remote_offset(
                        error.leader_address, topic, partition, spec, timestamp_ms
                    )
                elif error is not None:
                    raise error
                out[(topic, partition)] = -1 if offset is None else offset
        return out


async def _remote_offset(
    address: str, topic: str, partition: int, spec: str, timestamp_ms: int
) -> int:
    from streamhouse.broker.rpc.v1 import broker_pb2, broker_pb2_grpc

    specs = {
        "earliest": broker_pb2.OFFSET_SPEC_EARLIEST,
        "latest": broker_pb2.OFFSET_SPEC_LATEST,
        "timestamp": broker_pb2.OFFSET_SPEC_TIMESTAMP,
    }
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await broker_pb2_grpc.FetchStub(channel).ListOffsets(
            broker_pb2.ListOffsetsRequest(
                topic=topic, partitions=[partition], spec=specs[spec], timestamp_ms=timestamp_ms
            ),
            timeout=10,
        )
    entry = reply.offsets[0]
    if entry.error.code:
        raise NotLeaderError(topic, partition, entry.error.message)
    return entry.offset


def _decode(assignment: bytes) -> dict[str, list[int]]:
    if not assignment:
        return {}
    try:
        return {t: sorted(p) for t, p in decode_assignment(assignment).partitions.items()}
    except ValueError:
        return {}
