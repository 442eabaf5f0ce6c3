"""The broker's operations, independent of the wire: gRPC, REST and the Kafka listener map onto it.

Each front door only translates requests and errors; produce validation, leader routing, long
polls, offset lookups and group lag are decided here once.
"""

from streamhouse.broker.service.broker import (
    BrokerService,
    FetchedPartition,
    PartitionDescription,
    PartitionProduceResult,
    TopicDescription,
)
from streamhouse.broker.service.groups import GroupLag, GroupService, OffsetResetSpec

__all__ = [
    "BrokerService",
    "FetchedPartition",
    "GroupLag",
    "GroupService",
    "OffsetResetSpec",
    "PartitionDescription",
    "PartitionProduceResult",
    "TopicDescription",
]
