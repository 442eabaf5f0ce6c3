"""CreateTopics, DeleteTopics and CreatePartitions.

Every topic in a request gets its own result: one bad entry never fails the others. Replicas
are not ours to place (durability comes from the object store), so a replication factor of -1
or any positive number is accepted and manual replica assignments are refused.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.context import RequestContext
from streamhouse.broker.kafka.errors import ErrorCode, error_code, error_message
from streamhouse.broker.kafka.handlers.cluster import topic_uuid
from streamhouse.broker.kafka.handlers.configs import (
    Refused,
    check_topic_keys,
    created_topic_configs,
)
from streamhouse.broker.kafka.protocol.codec import ZERO_UUID
from streamhouse.broker.metadata import Topic, TopicConfig, TopicExistsError, UnknownTopicError
from streamhouse.broker.metadata import validate as checks
from streamhouse.broker.service.broker import INTERNAL_PREFIX, is_internal

NO_ASSIGNMENTS = "manual replica assignment is not served: StreamHouse places partitions itself"


def _duplicates(names: list[Any]) -> set[Any]:
    return {name for name, count in Counter(names).items() if count > 1}


def _checked_name(name: str) -> str:
    checks.topic_name(name)
    if is_internal(name):
        raise Refused(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            f"topic names starting with {INTERNAL_PREFIX!r} are reserved for StreamHouse",
        )
    return name


# ----------------------------------------------------------------------------- CreateTopics
def _creatable(ctx: RequestContext, topic: dict[str, Any]) -> tuple[int, dict[str, str]]:
    """Checks one CreateTopics entry; returns (partitions, configs) or raises with the reason."""
    name = _checked_name(topic["name"])
    if topic["assignments"]:
        raise Refused(ErrorCode.INVALID_REQUEST, NO_ASSIGNMENTS)
    partitions = topic["num_partitions"]
    if partitions == -1:
        partitions = ctx.cluster.settings.default_partitions
    checks.partition_count(partitions, f"create topic {name!r}")
    replication = topic["replication_factor"]
    if replication == 0 or replication < -1:
        raise Refused(
            ErrorCode.INVALID_REPLICATION_FACTOR,
            f"replication factor must be -1 or at least 1, got {replication}",
        )
    configs: dict[str, str] = {}
    for config in topic["configs"]:
        key, value = config["name"], config["value"]
        if key in configs:
            raise Refused(ErrorCode.INVALID_CONFIG, f"config {key!r} is given twice")
        if value is None:
            raise Refused(ErrorCode.INVALID_CONFIG, f"config {key!r} has a null value")
        configs[key] = value
    check_topic_keys(configs)
    TopicConfig().with_changes(configs)  # a bad value is refused before anything is created
    return partitions, configs


async def create_topics(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    version = ctx.api_version
    duplicates = _duplicates([t["name"] for t in request["topics"]])
    results = []
    reported: set[str] = set()
    for topic in request["topics"]:
        name = topic["name"]
        if name in reported:
            continue
        reported.add(name)
        result: dict[str, Any] = {"name": name, "topic_id": ZERO_UUID, "configs": None}
        try:
            if name in duplicates:
                raise Refused(ErrorCode.INVALID_REQUEST, f"topic {name!r} is named more than once")
            partitions, configs = _creatable(ctx, topic)
            if request["validate_only"]:
                if await _exists(ctx, name):
                    raise TopicExistsError(f"topic {name!r} already exists")
                config = TopicConfig().with_changes(configs)
            else:
                created = await ctx.broker.create_topic(name, partitions, configs)
                result["topic_id"] = topic_uuid(created)
                config = created.config
            result.update(error_code=0, error_message=None, num_partitions=partitions)
            result["replication_factor"] = 1
            if version >= 5:
                result["configs"] = created_topic_configs(ctx, config)
        except Exception as exc:
            result.update(error_code=error_code(exc), error_message=error_message(exc))
        results.append(result)
    return {"throttle_time_ms": 0, "topics": results}


async def _exists(ctx: RequestContext, name: str) -> bool:
    try:
        await ctx.broker.metadata.get_topic(name)
    except UnknownTopicError:
        return False
    return True


# ----------------------------------------------------------------------------- DeleteTopics
async def _topic_by_id(ctx: RequestContext, topic_id: bytes) -> Topic:
    for topic in await ctx.broker.list_topics(include_internal=True):
        if topic_uuid(topic) == topic_id:
            return topic
    raise Refused(ErrorCode.UNKNOWN_TOPIC_ID, f"no topic has id {topic_id.hex()}")


async def delete_topics(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    """By name, or (v6) by topic id; the result names both where they are known."""
    if ctx.api_version >= 6:
        entries = [(t["name"], t["topic_id"]) for t in request["topics"]]
    else:
        entries = [(name, ZERO_UUID) for name in request["topic_names"]]
    duplicates = _duplicates([name if name is not None else tid for name, tid in entries])
    responses = []
    for name, topic_id in entries:
        result: dict[str, Any] = {"name": name, "topic_id": topic_id}
        try:
            if (name if name is not None else topic_id) in duplicates:
                raise Refused(ErrorCode.INVALID_REQUEST, "a topic is named more than once")
            if name is not None and topic_id != ZERO_UUID:
                raise Refused(ErrorCode.INVALID_REQUEST, "give a topic name or an id, not both")
            if name is None:
                topic = await _topic_by_id(ctx, topic_id)
                result["name"] = topic.name
            else:
                topic = await ctx.broker.metadata.get_topic(name)
            result["topic_id"] = topic_uuid(topic)
            await ctx.broker.delete_topic(topic.name)
            result.update(error_code=0, error_message=None)
        except Exception as exc:
            result.update(error_code=error_code(exc), error_message=error_message(exc))
        responses.append(result)
    return {"throttle_time_ms": 0, "responses": responses}


# ------------------------------------------------------------------------- CreatePartitions
async def create_partitions(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    """``count`` is the new total; it must grow the topic."""
    duplicates = _duplicates([t["name"] for t in request["topics"]])
    results = []
    for entry in request["topics"]:
        name, count = entry["name"], entry["count"]
        try:
            if name in duplicates:
                raise Refused(ErrorCode.INVALID_REQUEST, f"topic {name!r} is named more than once")
            if entry["assignments"]:
                raise Refused(ErrorCode.INVALID_REQUEST, NO_ASSIGNMENTS)
            if is_internal(name):
                raise Refused(
                    ErrorCode.INVALID_REQUEST, f"internal topic {name!r} cannot be repartitioned"
                )
            topic = await ctx.broker.metadata.get_topic(name)
            checks.partition_count(count, f"add partitions to {name!r}")
            if count <= topic.partitions:
                raise Refused(
                    ErrorCode.INVALID_PARTITIONS,
                    f"topic {name!r} has {topic.partitions} partitions; the new total must be "
                    f"larger, got {count}",
                )
            if not request["validate_only"]:
                await ctx.broker.add_partitions(name, count)
            exc: Exception | None = None
        except Exception as caught:
            exc = caught
        results.append(
            {"name": name, "error_code": error_code(exc), "error_message": error_message(exc)}
        )
    return {"throttle_time_ms": 0, "results": results}


HANDLERS = {
    apis.CREATE_TOPICS: create_topics,
    apis.DELETE_TOPICS: delete_topics,
    apis.CREATE_PARTITIONS: create_partitions,
}
