"""The partition log API the rest of the system uses: append, read, offset lookups, retention."""

from streamhouse.broker.log.config import Acks, LogConfig
from streamhouse.broker.log.errors import (
    LogError,
    NotLeaderError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
    ProducerFencedError,
)
from streamhouse.broker.log.manager import LogManager
from streamhouse.broker.log.partition import AppendResult, PartitionLog

__all__ = [
    "Acks",
    "AppendResult",
    "LogConfig",
    "LogError",
    "LogManager",
    "NotLeaderError",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "PartitionLog",
    "ProducerFencedError",
]
