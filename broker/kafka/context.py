"""What a Kafka request handler sees: the agent's shared services and its own connection.

``KafkaCluster`` is built once per agent and shared by every connection; ``RequestContext`` is
made per request. Handlers are ``async def handle(ctx, request) -> dict | None`` over decoded
dicts (see protocol/codec.py); returning None sends no response (Produce with acks=0).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streamhouse.broker.groups.coordinator import GroupCoordinator
from streamhouse.broker.service import BrokerService, GroupService

CLUSTER_ID = "streamhouse"
NODES_CACHE_S = 1.0


@dataclass(frozen=True)
class KafkaSettings:
    """The Kafka listener's options.

    Attributes:
        host: interface to bind.
        port: port to bind (0 picks a free one; ``advertised_port`` then follows it).
        advertised_host: the name clients dial; defaults to ``host`` (``127.0.0.1`` for 0.0.0.0).
        auto_create_topics: create unknown topics on Metadata/Produce, as Kafka's default does.
        default_partitions: partitions of an auto-created topic (Kafka's ``num.partitions``).
        max_request_bytes: larger frames close the connection (``socket.request.max.bytes``).
        sasl_users: PLAIN credentials; empty means SASL is off and every client is trusted.
        connections_max_idle_ms: a connection without a complete request for this long is closed.
    """

    host: str = "127.0.0.1"
    port: int = 9092
    advertised_host: str = ""
    advertised_port: int = 0
    auto_create_topics: bool = True
    default_partitions: int = 1
    max_request_bytes: int = 100 * 1024 * 1024
    sasl_users: Mapping[str, str] = field(default_factory=dict)
    connections_max_idle_ms: int = 600_000

    @property
    def advertised_address(self) -> str:
        host = self.advertised_host or ("127.0.0.1" if self.host in ("", "0.0.0.0") else self.host)
        return f"{host}:{self.advertised_port or self.port}"


@dataclass(frozen=True)
class KafkaNode:
    """A broker as Kafka clients see it."""

    node_id: int
    host: str
    port: int
    agent_id: str = ""


def node_id_of(agent_id: str) -> int:
    """A stable non-negative int32 per agent: Kafka clients identify brokers by number."""
    return zlib.crc32(agent_id.encode()) & 0x7FFFFFFF


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class KafkaCluster:
    """This agent's view of the cluster for Kafka clients; one per agent."""

    def __init__(
        self,
        broker: BrokerService,
        groups: GroupService,
        coordinator: GroupCoordinator,
        settings: KafkaSettings,
    ) -> None:
        self.broker = broker
        self.groups = groups
        self.coordinator = coordinator
        self.settings = settings
        self.manager = broker.manager
        self.metadata = broker.metadata
        self.cluster_id = CLUSTER_ID
        self._nodes: tuple[float, list[KafkaNode]] | None = None

    @property
    def agent_id(self) -> str:
        return self.manager.agent_id

    @property
    def node_id(self) -> int:
        return node_id_of(self.manager.agent_id)

    def self_node(self) -> KafkaNode:
        host, port = split_address(self.settings.advertised_address)
        return KafkaNode(self.node_id, host, port, self.agent_id)

    async def nodes(self) -> list[KafkaNode]:
        """Live agents with a Kafka listener, this one first; cached for a second."""
        now = time.monotonic()
        if self._nodes is not None and now - self._nodes[0] < NODES_CACHE_S:
            return self._nodes[1]
        found = [self.self_node()]
        for agent in await self.broker.alive_agents():
            if agent.agent_id == self.agent_id or not agent.kafka_address:
                continue
            try:
                host, port = split_address(agent.kafka_address)
            except ValueError:
                continue
            found.append(KafkaNode(node_id_of(agent.agent_id), host, port, agent.agent_id))
        self._nodes = (now, found)
        return found

    async def node_of_agent(self, agent_id: str) -> KafkaNode | None:
        for node in await self.nodes():
            if node.agent_id == agent_id:
                return node
        return None


@dataclass
class ConnectionState:
    """Per-connection state: who the peer is and whether it has authenticated."""

    peer: str = ""
    client_id: str | None = None
    sasl_mechanism: str | None = None
    principal: str | None = None

    def authenticated(self, settings: KafkaSettings) -> bool:
        return not settings.sasl_users or self.principal is not None


@dataclass
class RequestContext:
    cluster: KafkaCluster
    connection: ConnectionState
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def broker(self) -> BrokerService:
        return self.cluster.broker

    @property
    def groups(self) -> GroupService:
        return self.cluster.groups

    @property
    def coordinator(self) -> GroupCoordinator:
        return self.cluster.coordinator
