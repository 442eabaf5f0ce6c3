"""Protobuf responses to the client's frozen dataclasses (the only module that knows both)."""

from __future__ import annotations

from types import MappingProxyType

from streamhouse.broker.client.errors import from_proto
from streamhouse.broker.client.models import (
    AgentInfo,
    ClusterMetadata,
    GroupDescription,
    GroupMember,
    GroupSummary,
    PartitionInfo,
    PartitionLag,
    TopicDescription,
    TopicInfo,
    TopicMetadata,
    TopicPartition,
)
from streamhouse.broker.rpc.v1 import broker_pb2 as pb


def topic_info(message: pb.TopicInfo) -> TopicInfo:
    return TopicInfo(
        name=message.name,
        topic_id=message.topic_id,
        partitions=message.partitions,
        configs=MappingProxyType(dict(message.configs)),
        created_at_ms=message.created_at_ms,
        internal=message.internal,
    )


def partition_info(message: pb.PartitionInfo) -> PartitionInfo:
    return PartitionInfo(
        partition=message.partition,
        log_start_offset=message.log_start_offset,
        next_offset=message.next_offset,
        committed_offset=message.committed_offset,
        size_bytes=message.size_bytes,
        segment_count=message.segment_count,
        leader_agent=message.leader_agent,
        leader_address=message.leader_address,
        leader_epoch=message.leader_epoch,
    )


def topic_description(message: pb.DescribeTopicResponse) -> TopicDescription:
    return TopicDescription(
        topic=topic_info(message.topic),
        partitions=tuple(partition_info(p) for p in message.partitions),
    )


def cluster_metadata(message: pb.MetadataResponse, address: str = "") -> ClusterMetadata:
    topics = {
        t.name: TopicMetadata(
            name=t.name,
            partitions=t.partitions,
            leaders=MappingProxyType(
                {leader.partition: leader.leader_address for leader in t.leaders}
            ),
            error=from_proto(t.error, address) if t.HasField("error") else None,
        )
        for t in message.topics
    }
    return ClusterMetadata(
        agents=tuple(
            AgentInfo(a.agent_id, a.address, a.heartbeat_at_ms, a.started_at_ms)
            for a in message.agents
        ),
        topics=MappingProxyType(topics),
        agent_id=message.agent_id,
    )


def topic_partitions(items) -> tuple[TopicPartition, ...]:
    return tuple(TopicPartition(item.topic, p) for item in items for p in item.partitions)


def as_topic_partitions(tps) -> list[pb.TopicPartitions]:
    by_topic: dict[str, list[int]] = {}
    for tp in tps:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return [pb.TopicPartitions(topic=t, partitions=sorted(p)) for t, p in sorted(by_topic.items())]


def group_summary(message: pb.GroupSummary) -> GroupSummary:
    return GroupSummary(message.group, message.state, message.members)


def group_description(message: pb.DescribeGroupResponse) -> GroupDescription:
    return GroupDescription(
        group=message.group,
        state=message.state,
        assignor=message.assignor,
        generation_id=message.generation_id,
        members=tuple(
            GroupMember(
                member_id=m.member_id,
                client_id=m.client_id,
                client_host=m.client_host,
                assignment=topic_partitions(m.assignment),
            )
            for m in message.members
        ),
        offsets=tuple(
            PartitionLag(
                topic=o.topic,
                partition=o.partition,
                committed_offset=o.committed_offset,
                end_offset=o.end_offset,
                lag=o.lag,
                member_id=o.member_id,
            )
            for o in message.offsets
        ),
        total_lag=message.total_lag,
    )


def offsets(entries) -> dict[TopicPartition, int]:
    return {TopicPartition(e.topic, e.partition): e.offset for e in entries}
