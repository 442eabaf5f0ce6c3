"""Topic resources: create, list, describe, change configs, add partitions, delete."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from streamhouse.broker.metadata import Topic, TopicExistsError
from streamhouse.broker.service import TopicDescription
from streamhouse.broker.service.broker import is_internal
from streamhouse.workbench.http.errors import API_PREFIX, ERROR_RESPONSES, ServiceRoute
from streamhouse.workbench.http.services import Broker

ConfigValue = StrictStr | StrictInt

router = APIRouter(
    prefix=f"{API_PREFIX}/topics",
    tags=["topics"],
    route_class=ServiceRoute,
    responses=ERROR_RESPONSES,
)


class TopicInfo(BaseModel):
    name: str
    topic_id: int
    partitions: int
    configs: dict[str, str] = Field(description="Kafka config names: retention.ms, ...")
    created_at_ms: int
    internal: bool

    @classmethod
    def of(cls, topic: Topic) -> TopicInfo:
        return cls(
            name=topic.name,
            topic_id=topic.topic_id,
            partitions=topic.partitions,
            configs=topic.config.to_kafka_dict(),
            created_at_ms=topic.created_at,
            internal=is_internal(topic.name),
        )


class TopicList(BaseModel):
    topics: list[TopicInfo]


class PartitionInfo(BaseModel):
    partition: int
    log_start_offset: int
    next_offset: int = Field(description="high watermark where the leader is known")
    committed_offset: int = Field(description="end of what is committed to the object store")
    size_bytes: int = Field(description="bytes in committed segments")
    segment_count: int
    leader_agent: str = Field(description="empty when no agent holds a live lease")
    leader_address: str
    leader_epoch: int


class TopicDetails(BaseModel):
    topic: TopicInfo
    partitions: list[PartitionInfo]

    @classmethod
    def of(cls, described: TopicDescription) -> TopicDetails:
        return cls(
            topic=TopicInfo.of(described.topic),
            partitions=[
                PartitionInfo(
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


class CreateTopic(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=249)
    partitions: int = Field(1, ge=1)
    configs: dict[str, ConfigValue] = Field(default_factory=dict)
    if_not_exists: bool = Field(False, description="answer 200 with the existing topic")


class UpdateTopicConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    set_: dict[str, ConfigValue] = Field(default_factory=dict, alias="set")
    reset: list[str] = Field(default_factory=list, description="keys back to their defaults")


class AddPartitions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    total: int = Field(ge=1, description="the new partition count (must grow the topic)")


def _strings(configs: dict[str, ConfigValue]) -> dict[str, str]:
    return {key: str(value) for key, value in configs.items()}


@router.get("", response_model=TopicList)
async def list_topics(broker: Broker, include_internal: bool = Query(False)) -> TopicList:
    topics = await broker.list_topics(include_internal=include_internal)
    return TopicList(topics=[TopicInfo.of(t) for t in topics])


@router.post(
    "",
    status_code=201,
    response_model=TopicInfo,
    responses={200: {"model": TopicInfo, "description": "existed already (if_not_exists)"}},
)
async def create_topic(body: CreateTopic, broker: Broker, response: Response) -> TopicInfo:
    try:
        topic = await broker.create_topic(body.name, body.partitions, _strings(body.configs))
    except TopicExistsError:
        if not body.if_not_exists:
            raise
        response.status_code = 200
        topic = await broker.metadata.get_topic(body.name)
    response.headers["Location"] = f"{API_PREFIX}/topics/{topic.name}"
    return TopicInfo.of(topic)


@router.get("/{name}", response_model=TopicDetails)
async def describe_topic(name: str, broker: Broker) -> TopicDetails:
    return TopicDetails.of(await broker.describe_topic(name))


@router.patch("/{name}/config", response_model=TopicInfo)
async def update_topic_config(name: str, body: UpdateTopicConfig, broker: Broker) -> TopicInfo:
    topic = await broker.update_topic_config(name, _strings(body.set_), body.reset)
    return TopicInfo.of(topic)


@router.post("/{name}/partitions", response_model=TopicInfo)
async def add_partitions(name: str, body: AddPartitions, broker: Broker) -> TopicInfo:
    return TopicInfo.of(await broker.add_partitions(name, body.total))


@router.delete("/{name}", status_code=204, response_class=Response)
async def delete_topic(name: str, broker: Broker) -> Response:
    await broker.delete_topic(name)
    return Response(status_code=204)
