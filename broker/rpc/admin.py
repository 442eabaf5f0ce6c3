"""The Admin service: topics and cluster metadata."""

from __future__ import annotations

import grpc
from streamhouse.broker.metadata import Topic, UnknownTopicError
from streamhouse.broker.rpc.calls import unary
from streamhouse.broker.rpc.errors import error_proto
from streamhouse.broker.rpc.v1 import broker_pb2 as pb
from streamhouse.broker.rpc.v1 import broker_pb2_grpc
from streamhouse.broker.service import BrokerService
from streamhouse.broker.service.broker import is_internal

Context = grpc.aio.ServicerContext


def topic_info(topic: Topic) -> pb.TopicInfo:
    return pb.TopicInfo(
        name=topic.name,
        topic_id=topic.topic_id,
        partitions=topic.partitions,
        configs=topic.config.to_kafka_dict(),
        created_at_ms=topic.created_at,
        internal=is_internal(topic.name),
    )


class AdminServicer(broker_pb2_grpc.AdminServicer):
    def __init__(self, service: BrokerService) -> None:
        self.service = service

    @unary("create_topic")
    async def CreateTopic(self, request: pb.CreateTopicRequest, context: Context):
        topic = await self.service.create_topic(
            request.name,
            request.partitions,
            dict(request.configs),
            if_not_exists=request.if_not_exists,
        )
        return pb.CreateTopicResponse(topic=topic_info(topic))

    @unary("list_topics")
    async def ListTopics(self, request: pb.ListTopicsRequest, context: Context):
        topics = await self.service.list_topics(include_internal=request.include_internal)
        return pb.ListTopicsResponse(topics=[topic_info(t) for t in topics])

    @unary("describe_topic")
    async def DescribeTopic(self, request: pb.DescribeTopicRequest, context: Context):
        described = await self.service.describe_topic(request.name)
        return pb.DescribeTopicResponse(
            topic=topic_info(described.topic),
            partitions=[
                pb.PartitionInfo(
                    partition=p.partition,
                    log_start_offset=p.log_start_offset,
                    next_offset=p.next_offset,
                    committed_offset=p.committed_offset,
                    size_bytes=p.size_bytes,
                    segment_count=p.segment_count,
                    leader_agent=p.leader_agent,
                    leader_address=p.leader_address,
                    leader_epoch=p.leader_epoch,
                )
                for p in described.partitions
            ],
        )

    @unary("update_topic_config")
    async def UpdateTopicConfig(self, request: pb.UpdateTopicConfigRequest, context: Context):
        topic = await self.service.update_topic_config(
            request.name, dict(request.set), list(request.reset)
        )
        return pb.UpdateTopicConfigResponse(topic=topic_info(topic))

    @unary("delete_topic")
    async def DeleteTopic(self, request: pb.DeleteTopicRequest, context: Context):
        await self.service.delete_topic(request.name)
        return pb.DeleteTopicResponse()

    @unary("add_partitions")
    async def AddPartitions(self, request: pb.AddPartitionsRequest, context: Context):
        topic = await self.service.add_partitions(request.name, request.total)
        return pb.AddPartitionsResponse(topic=topic_info(topic))

    @unary("metadata")
    async def Metadata(self, request: pb.MetadataRequest, context: Context):
        agents = await self.service.alive_agents()
        if request.topics:
            topics: list[Topic | str] = []
            for name in request.topics:
                try:
                    topics.append(await self.service.metadata.get_topic(name))
                except UnknownTopicError:
                    topics.append(name)
        else:
            topics = list(await self.service.list_topics(include_internal=True))
        out = []
        for topic in topics:
            if isinstance(topic, str):
                missing = UnknownTopicError(f"unknown topic {topic!r}")
                out.append(pb.TopicMetadata(name=topic, error=error_proto(missing)))
                continue
            leaders = await self.service.partition_leaders(topic)
            out.append(
                pb.TopicMetadata(
                    name=topic.name,
                    partitions=topic.partitions,
                    leaders=[
                        pb.PartitionLeader(
                            partition=leader.partition,
                            leader_agent=leader.agent_id,
                            leader_address=leader.address,
                        )
                        for leader in leaders
                    ],
                )
            )
        return pb.MetadataResponse(
            agents=[
                pb.AgentInfo(
                    agent_id=a.agent_id,
                    address=a.address,
                    heartbeat_at_ms=a.heartbeat_at,
                    started_at_ms=a.started_at,
                )
                for a in agents
            ],
            topics=out,
            agent_id=self.service.manager.agent_id,
        )
