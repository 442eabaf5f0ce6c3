"""A consumer's membership of a group: join, heartbeat, rejoin on rebalance, leave.

The server computes assignments (JoinGroup blocks until the rebalance completes and returns
this member's partitions), so the client side is a small state machine. Rejoining happens in
the heartbeat task as soon as the coordinator says a rebalance started: a member that only
rejoined from ``poll`` would stall every other member's JoinGroup until it polled again.

``epoch`` changes whenever the assignment may change (at the start and the end of a join), so
the consumer can drop a fetch that raced a rebalance instead of returning records of
partitions it no longer owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from streamhouse.broker.client.cluster import Cluster
from streamhouse.broker.client.convert import as_topic_partitions, topic_partitions
from streamhouse.broker.client.errors import (
    GroupError,
    GroupNotFoundError,
    StreamHouseError,
)
from streamhouse.broker.client.models import TopicPartition
from streamhouse.broker.rpc.v1 import broker_pb2 as pb

log = logging.getLogger("streamhouse.client.group")

Partitions = frozenset[TopicPartition]
Callback = Callable[[Partitions], Awaitable[None]]
JOIN_GRACE_S = 10.0  # JoinGroup may block for the rebalance timeout; allow this much more
_REJOIN_REASONS = frozenset({"REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION", "MEMBER_ID_REQUIRED"})


class GroupMembership:
    """Membership of ``group`` for ``topics``; ``on_revoke``/``on_assign`` see the partitions
    given up before a join and received after it."""

    def __init__(
        self,
        cluster: Cluster,
        group: str,
        *,
        client_id: str,
        assignor: str,
        session_timeout_ms: int,
        heartbeat_interval_ms: int,
        rebalance_timeout_ms: int,
        on_revoke: Callback,
        on_assign: Callback,
    ) -> None:
        self.cluster = cluster
        self.group = group
        self.client_id = client_id
        self.assignor = assignor
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_s = heartbeat_interval_ms / 1000
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.on_revoke = on_revoke
        self.on_assign = on_assign
        self.topics: list[str] = []
        self.member_id = ""
        self.generation = -1
        self.assignment: Partitions = frozenset()
        self.epoch = 0
        self.needs_join = True
        self._lock = asyncio.Lock()
        self._heartbeat: asyncio.Task[None] | None = None
        self._closed = False

    def subscribe(self, topics: list[str]) -> None:
        self.topics = topics
        self.needs_join = True
        self.epoch += 1

    @property
    def active(self) -> bool:
        return not self.needs_join and not self._lock.locked()

    async def ensure_active(self) -> None:
        """Joins (or rejoins) if needed and keeps the heartbeat running."""
        if self.needs_join or self._lock.locked():
            async with self._lock:
                if self.needs_join:
                    await self._join()
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._heartbeats(), name="streamhouse-heartbeat")

    async def _join(self) -> None:
        self.epoch += 1
        if self.assignment:
            try:
                await self.on_revoke(self.assignment)
            except StreamHouseError as exc:
                log.warning("group %s: committing before the rebalance failed: %s", self.group, exc)
        request_timeout = self.rebalance_timeout_ms / 1000 + JOIN_GRACE_S
        attempt = 0
        while True:
            request = pb.JoinGroupRequest(
                group=self.group,
                member_id=self.member_id,
                client_id=self.client_id,
                topics=self.topics,
                assignor=self.assignor,
                session_timeout_ms=self.session_timeout_ms,
                rebalance_timeout_ms=self.rebalance_timeout_ms,
                owned=as_topic_partitions(self.assignment),
            )
            try:
                response = await self.cluster.group_call(
                    self.group, "JoinGroup", request, request_timeout
                )
                break
            except GroupNotFoundError as exc:
                self.member_id = ""  # our session is gone: join as a new member
                error: StreamHouseError = exc
            except GroupError as exc:
                if exc.reason not in _REJOIN_REASONS:
                    raise
                error = exc
            if attempt >= self.cluster.retry.retries:
                raise error
            await asyncio.sleep(self.cluster.retry.delay(attempt))
            attempt += 1
        self.member_id = response.member_id
        self.generation = response.generation_id
        self.assignment = frozenset(topic_partitions(response.assignment))
        self.needs_join = False
        self.epoch += 1
        log.info("group %s: member %s generation %d assigned %s", self.group, self.member_id,
                 self.generation, sorted(self.assignment))  # fmt: skip
        await self.on_assign(self.assignment)

    async def _heartbeats(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.heartbeat_interval_s)
            if self.needs_join or self._lock.locked():
                continue
            request = pb.HeartbeatRequest(
                group=self.group, member_id=self.member_id, generation_id=self.generation
            )
            try:
                response = await self.cluster.group_call(
                    self.group, "Heartbeat", request, retry=False
                )
                rejoin = response.rebalance_in_progress
            except GroupNotFoundError:
                self.member_id = ""
                rejoin = True
            except GroupError:
                rejoin = True  # stale generation, rebalance: rejoin for the current one
            except StreamHouseError as exc:
                log.debug("group %s: heartbeat failed: %s", self.group, exc)
                continue
            if rejoin and not self._closed:
                self.needs_join = True
                self.epoch += 1
                try:
                    await self.ensure_active()
                except StreamHouseError as exc:
                    log.warning("group %s: rejoin failed (retried on the next poll): %s",
                                self.group, exc)  # fmt: skip

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        entries = [
            pb.OffsetEntry(topic=tp.topic, partition=tp.partition, offset=offset)
            for tp, offset in offsets.items()
        ]
        request = pb.CommitOffsetsRequest(
            group=self.group,
            member_id=self.member_id,
            generation_id=self.generation,
            offsets=entries,
        )
        await self.cluster.group_call(self.group, "CommitOffsets", request)

    async def leave(self) -> None:
        self._closed = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(BaseException):
                await self._heartbeat
        if self.member_id:
            request = pb.LeaveGroupRequest(group=self.group, member_id=self.member_id)
            try:
                await self.cluster.group_call(self.group, "LeaveGroup", request, retry=False)
            except StreamHouseError as exc:
                log.debug("group %s: leave failed (the session will expire): %s", self.group, exc)
        self.member_id = ""
        self.assignment = frozenset()
