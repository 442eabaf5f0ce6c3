"""What a client knows about the cluster: bootstrap addresses, partition leaders, coordinators.

Leaders are learnt from Admin.Metadata and corrected from error hints (``leader_address`` of a
NOT_LEADER error) without a round trip. A partition whose leader is unknown (no live lease yet)
is sent to a bootstrap agent: any agent accepts the request and takes the lease, or answers
NOT_LEADER naming the right one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import grpc
from streamhouse.broker.client.channels import Channels
from streamhouse.broker.client.convert import cluster_metadata
from streamhouse.broker.client.errors import (
    NotLeaderError,
    StreamHouseError,
    UnavailableError,
)
from streamhouse.broker.client.models import ClusterMetadata
from streamhouse.broker.client.retry import RetryPolicy
from streamhouse.broker.rpc.v1 import broker_pb2 as pb

MAX_METADATA_AGE_S = 300.0  # re-read partition counts and leaders at least this often


class Cluster:
    """Routing state shared by every part of one client (one event loop)."""

    def __init__(
        self,
        channels: Channels,
        servers: list[str],
        retry: RetryPolicy,
        timeout_s: float,
    ) -> None:
        self.channels = channels
        self.servers = servers
        self.retry = retry
        self.timeout_s = timeout_s
        self._next_server = 0
        self._partitions: dict[str, int] = {}
        self._leaders: dict[tuple[str, int], str] = {}
        self._loaded_at: dict[str, float] = {}
        self._stale: set[str] = set()
        self._coordinators: dict[str, str] = {}
        self._refresh_lock = asyncio.Lock()

    # ------------------------------------------------------------------ bootstrap calls
    @property
    def bootstrap(self) -> str:
        return self.servers[self._next_server % len(self.servers)]

    async def call_any(
        self, service: str, method: str, request: Any, timeout_s: float | None = None
    ) -> Any:
        """One call to a bootstrap agent, moving on to the next one while they are unreachable."""
        last: StreamHouseError | None = None
        for _ in self.servers:
            address = self.bootstrap
            try:
                return await self.channels.call(
                    address, service, method, request, timeout_s or self.timeout_s
                )
            except UnavailableError as exc:
                last = exc
                self._next_server += 1
        assert last is not None
        raise last

    # --------------------------------------------------------------------- topic metadata
    async def metadata(self, topics: Iterable[str] = ()) -> ClusterMetadata:
        """Reads the cluster's metadata and remembers partition counts and leaders."""
        request = pb.MetadataRequest(topics=sorted(set(topics)))
        response = await self.call_any("admin", "Metadata", request)
        result = cluster_metadata(response, self.bootstrap)
        now = time.monotonic()
        for name, topic in result.topics.items():
            if topic.error is not None:
                self._forget(name)
                continue
            self._partitions[name] = topic.partitions
            self._loaded_at[name] = now
            self._stale.discard(name)
            for partition in range(topic.partitions):
                self._leaders[(name, partition)] = topic.leaders.get(partition, "")
        return result

    async def refresh(self, topics: Iterable[str]) -> None:
        """Re-reads the metadata of ``topics`` (with retries); concurrent callers share it."""
        wanted = set(topics)
        async with self._refresh_lock:
            started = time.monotonic()
            # Someone else refreshed these while we waited for the lock: nothing to do.
            if wanted and all(
                self._loaded_at.get(t, 0) >= started - 0.001 and t not in self._stale
                for t in wanted
            ):
                return
            await self.retry.call(lambda: self.metadata(wanted))

    async def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has. Raises NotFoundError for an unknown topic."""
        count = self._partitions.get(topic)
        if count is not None and time.monotonic() - self._loaded_at[topic] < MAX_METADATA_AGE_S:
            return count
        result = await self.retry.call(lambda: self.metadata([topic]))
        meta = result.topics.get(topic)
        if meta is None:
            raise StreamHouseError(f"metadata for {topic!r} is missing from the answer")
        if meta.error is not None:
            raise meta.error
        return meta.partitions

    def cached_partition_count(self, topic: str) -> int | None:
        return self._partitions.get(topic)

    def leader(self, topic: str, partition: int) -> str:
        """The address to send ``topic[partition]`` requests to."""
        return self._leaders.get((topic, partition)) or self.bootstrap

    def note_leader(self, topic: str, partition: int, address: str) -> None:
        """Follows a leader hint from an error; with no hint the topic is re-read."""
        if address:
            self._leaders[(topic, partition)] = address
        else:
            self._leaders.pop((topic, partition), None)
            self.mark_stale(topic)

    def mark_stale(self, topic: str) -> None:
        self._stale.add(topic)

    @property
    def stale_topics(self) -> set[str]:
        return set(self._stale)

    def _forget(self, topic: str) -> None:
        self._partitions.pop(topic, None)
        self._loaded_at.pop(topic, None)
        self._stale.discard(topic)

    # ----------------------------------------------------------------------- coordinators
    async def coordinator(self, group: str) -> str:
        address = self._coordinators.get(group)
        if address:
            return address
        response = await self.call_any(
            "groups", "FindCoordinator", pb.FindCoordinatorRequest(group=group)
        )
        if not response.address:
            raise NotLeaderError(
                f"no agent coordinates group {group!r} yet",
                code=grpc.StatusCode.UNAVAILABLE,
                reason="NOT_COORDINATOR",
            )
        self._coordinators[group] = response.address
        return response.address

    def note_coordinator(self, group: str, error: StreamHouseError) -> None:
        """After an error from the coordinator: follow its hint or look it up again."""
        if isinstance(error, NotLeaderError) and error.leader_address:
            self._coordinators[group] = error.leader_address
        else:
            self._coordinators.pop(group, None)

    async def group_call(
        self,
        group: str,
        method: str,
        request: Any,
        timeout_s: float | None = None,
        *,
        retry: bool = True,
    ) -> Any:
        """A Groups call at the group's coordinator, following NOT_COORDINATOR redirects."""

        async def once() -> Any:
            address = await self.coordinator(group)
            try:
                return await self.channels.call(
                    address, "groups", method, request, timeout_s or self.timeout_s
                )
            except (NotLeaderError, UnavailableError) as exc:
                self.note_coordinator(group, exc)
                raise

        return await self.retry.call(once) if retry else await once()
