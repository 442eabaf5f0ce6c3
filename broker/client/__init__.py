"""The Python client of the StreamHouse gRPC API: producer, consumer and admin.

The asyncio classes (``AsyncProducer``, ``AsyncConsumer``, ``AsyncAdminClient``) hold all the
logic; ``Producer``, ``Consumer`` and ``AdminClient`` are blocking wrappers that run them on a
private event loop thread. Records travel as Kafka RecordBatch v2 bytes built on the client,
so the server stores them without touching records one by one.
"""

from streamhouse.broker.client.admin import AsyncAdminClient
from streamhouse.broker.client.consumer import AsyncConsumer
from streamhouse.broker.client.errors import (
    AlreadyExistsError,
    BackpressureError,
    FencedError,
    GroupError,
    GroupNotFoundError,
    InvalidRequestError,
    NoOffsetError,
    NotFoundError,
    NotLeaderError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
    RebalanceInProgressError,
    RequestTimeoutError,
    StreamHouseError,
    UnavailableError,
)
from streamhouse.broker.client.models import (
    AgentInfo,
    BulkSendResult,
    ClusterMetadata,
    ConsumerRecord,
    GroupDescription,
    GroupMember,
    GroupSummary,
    PartitionInfo,
    PartitionLag,
    RecordMetadata,
    TopicDescription,
    TopicInfo,
    TopicMetadata,
    TopicPartition,
)
from streamhouse.broker.client.producer import AsyncProducer
from streamhouse.broker.client.sync import AdminClient, Consumer, Producer

__all__ = [
    "AdminClient",
    "AgentInfo",
    "AlreadyExistsError",
    "AsyncAdminClient",
    "AsyncConsumer",
    "AsyncProducer",
    "BackpressureError",
    "BulkSendResult",
    "ClusterMetadata",
    "Consumer",
    "ConsumerRecord",
    "FencedError",
    "GroupDescription",
    "GroupError",
    "GroupMember",
    "GroupNotFoundError",
    "GroupSummary",
    "InvalidRequestError",
    "NoOffsetError",
    "NotFoundError",
    "NotLeaderError",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "PartitionInfo",
    "PartitionLag",
    "Producer",
    "RebalanceInProgressError",
    "RecordMetadata",
    "RequestTimeoutError",
    "StreamHouseError",
    "TopicDescription",
    "TopicInfo",
    "TopicMetadata",
    "TopicPartition",
    "UnavailableError",
]
