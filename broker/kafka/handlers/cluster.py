"""ApiVersions, Metadata and DescribeCluster: how clients discover brokers, topics and leaders."""

from __future__ import annotations

import uuid
from typing import Any

from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.context import KafkaCluster, KafkaNode, RequestContext
from streamhouse.broker.kafka.errors import ErrorCode, error_code
from streamhouse.broker.metadata import Topic, UnknownTopicError
from streamhouse.broker.service.broker import is_internal

_TOPIC_ID_NAMESPACE = uuid.UUID("5b0c2f3e-7d4a-4c1e-9a51-3f0e6a7c9d21")


def topic_uuid(topic: Topic) -> bytes:
    """A stable, never-reused Kafka topic id derived from our own topic id."""
    return uuid.uuid5(_TOPIC_ID_NAMESPACE, f"{topic.name}/{topic.topic_id}").bytes


def advertised_api_keys() -> list[dict[str, int]]:
    from streamhouse.broker.kafka.handlers import HANDLERS

    return [
        {"api_key": key, "min_version": low, "max_version": high}
        for key, (low, high) in sorted(apis.SUPPORTED.items())
        if key in HANDLERS
    ]


async def api_versions(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    return {"error_code": 0, "api_keys": advertised_api_keys(), "throttle_time_ms": 0}


def _broker_entry(node: KafkaNode) -> dict[str, Any]:
    return {"node_id": node.node_id, "host": node.host, "port": node.port, "rack": None}


async def auto_create(cluster: KafkaCluster, name: str) -> Topic:
    """Creates ``name`` with the default partition count, or returns it if another won the race."""
    return await cluster.broker.create_topic(
        name, cluster.settings.default_partitions, if_not_exists=True
    )


async def describe_topic_leaders(
    cluster: KafkaCluster, topic: Topic, nodes: list[KafkaNode]
) -> list[dict[str, Any]]:
    """Metadata partition entries: the live lease holder leads; a free partition is offered
    here, where the first request claims it."""
    by_agent = {node.agent_id: node for node in nodes}
    leaders = await cluster.broker.partition_leaders(topic)
    partitions = []
    for leader in leaders:
        if not leader.agent_id:
            node_id, error = cluster.node_id, 0
        elif leader.agent_id in by_agent:
            node_id, error = by_agent[leader.agent_id].node_id, 0
        else:
            node_id, error = -1, ErrorCode.LEADER_NOT_AVAILABLE
        replicas = [node_id] if node_id >= 0 else []
        partitions.append(
            {
                "error_code": error,
                "partition_index": leader.partition,
                "leader_id": node_id,
                "leader_epoch": -1,
                "replica_nodes": replicas,
                "isr_nodes": replicas,
                "offline_replicas": [],
            }
        )
    return partitions


async def metadata(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    cluster = ctx.cluster
    nodes = await cluster.nodes()
    requested = request["topics"]
    if requested is None or (ctx.api_version == 0 and not requested):
        names = [t.name for t in await ctx.broker.list_topics()]
        may_create = False
    else:
        names = [t["name"] for t in requested]
        may_create = request["allow_auto_topic_creation"] and cluster.settings.auto_create_topics
    topics = []
    for name in dict.fromkeys(names):
        entry: dict[str, Any] = {"name": name, "is_internal": False, "partitions": []}
        try:
            if name is None:
                raise UnknownTopicError("topic ids are not served; name the topic")
            try:
                topic = await ctx.broker.topic(name)
            except UnknownTopicError:
                if not may_create or is_internal(name):
                    raise
                topic = await auto_create(cluster, name)
            entry["topic_id"] = topic_uuid(topic)
            entry["partitions"] = await describe_topic_leaders(cluster, topic, nodes)
            entry["error_code"] = 0
        except Exception as exc:
            entry["error_code"] = error_code(exc)
        topics.append(entry)
    return {
        "throttle_time_ms": 0,
        "brokers": [_broker_entry(node) for node in nodes],
        "cluster_id": cluster.cluster_id,
        "controller_id": cluster.node_id,
        "topics": topics,
        "cluster_authorized_operations": -2147483648,
    }


async def describe_cluster(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    cluster = ctx.cluster
    return {
        "throttle_time_ms": 0,
        "error_code": 0,
        "error_message": None,
        "endpoint_type": 1,
        "cluster_id": cluster.cluster_id,
        "controller_id": cluster.node_id,
        "brokers": [_broker_entry(node) for node in await cluster.nodes()],
        "cluster_authorized_operations": -2147483648,
    }


HANDLERS = {
    apis.API_VERSIONS: api_versions,
    apis.METADATA: metadata,
    apis.DESCRIBE_CLUSTER: describe_cluster,
}
