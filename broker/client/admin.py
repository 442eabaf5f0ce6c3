"""The asyncio admin client: topics, cluster metadata and consumer groups.

Topic calls go to any bootstrap agent (metadata is shared); group calls go to the group's
coordinator, found with FindCoordinator and followed when it moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from streamhouse.broker.client import convert
from streamhouse.broker.client.channels import Channels
from streamhouse.broker.client.cluster import Cluster
from streamhouse.broker.client.models import (
    ClusterMetadata,
    GroupDescription,
    GroupSummary,
    TopicDescription,
    TopicInfo,
    TopicPartition,
)
from streamhouse.broker.client.options import check_positive, parse_servers
from streamhouse.broker.client.retry import RetryPolicy
from streamhouse.broker.rpc.v1 import broker_pb2 as pb

_RESET_TO = {
    "earliest": pb.ResetOffsetsRequest.TO_EARLIEST,
    "latest": pb.ResetOffsetsRequest.TO_LATEST,
    "offset": pb.ResetOffsetsRequest.TO_OFFSET,
    "timestamp": pb.ResetOffsetsRequest.TO_TIMESTAMP,
}


class AsyncAdminClient:
    """Manages topics and groups. Unreachable servers raise UnavailableError after
    ``retries`` attempts; every other failure raises at once."""

    def __init__(
        self,
        servers: str = "127.0.0.1:50051",
        *,
        retries: int = 3,
        retry_backoff_ms: int = 100,
        retry_backoff_max_ms: int = 2000,
        request_timeout_ms: int = 30_000,
    ) -> None:
        self.servers = parse_servers(servers)
        self._retry = RetryPolicy(
            check_positive("retries", retries, zero_ok=True),
            check_positive("retry_backoff_ms", retry_backoff_ms, zero_ok=True),
            check_positive("retry_backoff_max_ms", retry_backoff_max_ms, zero_ok=True),
        )
        self._channels = Channels(
            reconnect_backoff_ms=retry_backoff_ms, max_reconnect_backoff_ms=retry_backoff_max_ms
        )
        self._cluster = Cluster(
            self._channels,
            self.servers,
            self._retry,
            check_positive("request_timeout_ms", request_timeout_ms) / 1000,
        )

    async def __aenter__(self) -> AsyncAdminClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channels.close()

    async def _admin(self, method: str, request):
        return await self._retry.call(lambda: self._cluster.call_any("admin", method, request))

    # ------------------------------------------------------------------------------ topics
    async def create_topic(
        self,
        name: str,
        partitions: int = 1,
        configs: Mapping[str, str] | None = None,
        if_not_exists: bool = False,
    ) -> TopicInfo:
        """Creates ``name``. Raises AlreadyExistsError (unless ``if_not_exists``),
        InvalidRequestError for a bad name, count or config."""
        check_positive("partitions", partitions)
        request = pb.CreateTopicRequest(
            name=name,
            partitions=partitions,
            configs={str(k): str(v) for k, v in (configs or {}).items()},
            if_not_exists=if_not_exists,
        )
        return convert.topic_info((await self._admin("CreateTopic", request)).topic)

    async def list_topics(self, include_internal: bool = False) -> list[TopicInfo]:
        request = pb.ListTopicsRequest(include_internal=include_internal)
        return [convert.topic_info(t) for t in (await self._admin("ListTopics", request)).topics]

    async def describe_topic(self, name: str) -> TopicDescription:
        request = pb.DescribeTopicRequest(name=name)
        return convert.topic_description(await self._admin("DescribeTopic", request))

    async def update_topic_config(
        self,
        name: str,
        set: Mapping[str, str] | None = None,
        reset: Iterable[str] | None = None,
    ) -> TopicInfo:
        """Sets some configs and returns others (``reset``) to their defaults."""
        request = pb.UpdateTopicConfigRequest(
            name=name,
            set={str(k): str(v) for k, v in (set or {}).items()},
            reset=list(reset or ()),
        )
        return convert.topic_info((await self._admin("UpdateTopicConfig", request)).topic)

    async def delete_topic(self, name: str) -> None:
        await self._admin("DeleteTopic", pb.DeleteTopicRequest(name=name))

    async def add_partitions(self, name: str, total: int) -> TopicInfo:
        """Grows ``name`` to ``total`` partitions (must be more than it has)."""
        check_positive("total", total)
        request = pb.AddPartitionsRequest(name=name, total=total)
        return convert.topic_info((await self._admin("AddPartitions", request)).topic)

    async def metadata(self, topics: Iterable[str] | None = None) -> ClusterMetadata:
        """Alive agents and each topic's partition leaders (all topics when None); an unknown
        topic is reported in its entry's ``error``."""
        names = [topics] if isinstance(topics, str) else list(topics or ())
        return await self._retry.call(lambda: self._cluster.metadata(names))

    # ------------------------------------------------------------------------------ groups
    async def list_groups(self) -> list[GroupSummary]:
        response = await self._retry.call(
            lambda: self._cluster.call_any("groups", "ListGroups", pb.ListGroupsRequest())
        )
        return [convert.group_summary(g) for g in response.groups]

    async def describe_group(self, group: str) -> GroupDescription:
        response = await self._cluster.group_call(
            group, "DescribeGroup", pb.DescribeGroupRequest(group=group)
        )
        return convert.group_description(response)

    async def fetch_offsets(
        self, group: str, topic: str | None = None
    ) -> dict[TopicPartition, int]:
        """The group's committed offsets (of one topic, or all)."""
        request = pb.FetchOffsetsRequest(group=group, topic=topic or "")
        response = await self._cluster.group_call(group, "FetchOffsets", request)
        return convert.offsets(response.offsets)

    async def reset_offsets(
        self,
        group: str,
        topic: str,
        to: str,
        value: int = 0,
        partitions: Iterable[int] | None = None,
        dry_run: bool = False,
    ) -> dict[TopicPartition, int]:
        """Moves an inactive group's offsets ``to`` "earliest", "latest", "offset" (``value``)
        or "timestamp" (``value`` in epoch ms); returns the new offsets. ``dry_run`` only
        computes them."""
        if to not in _RESET_TO:
            raise ValueError(f"to must be one of {', '.join(_RESET_TO)}, not {to!r}")
        request = pb.ResetOffsetsRequest(
            group=group,
            topic=topic,
            partitions=sorted(partitions or ()),
            to=_RESET_TO[to],
            value=value,
            dry_run=dry_run,
        )
        response = await self._cluster.group_call(group, "ResetOffsets", request)
        return convert.offsets(response.offsets)

    async def delete_group(self, group: str) -> None:
        await self._cluster.group_call(group, "DeleteGroup", pb.DeleteGroupRequest(group=group))
