"""Exceptions of the log, metadata, records and groups mapped to gRPC status codes and reasons.

The table is keyed by exception class name and walked along the MRO, so a subclass inherits its
parent's mapping and the most specific entry wins. Anything unknown is INTERNAL and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
from streamhouse.broker.rpc.v1 import broker_pb2

log = logging.getLogger("streamhouse.rpc")

LEADER_KEY = "streamhouse-leader"
REASON_KEY = "streamhouse-error"

Code = grpc.StatusCode
_BY_NAME: dict[str, tuple[grpc.StatusCode, str]] = {
    # metadata
    "UnknownTopicError": (Code.NOT_FOUND, "UNKNOWN_TOPIC"),
    "UnknownPartitionError": (Code.NOT_FOUND, "UNKNOWN_PARTITION"),
    "TopicExistsError": (Code.ALREADY_EXISTS, "TOPIC_EXISTS"),
    "InvalidConfigError": (Code.INVALID_ARGUMENT, "INVALID_CONFIG"),
    "InvalidRequestError": (Code.INVALID_ARGUMENT, "INVALID_REQUEST"),
    "FencedError": (Code.FAILED_PRECONDITION, "FENCED_LEADER"),
    "ProducerFencedError": (Code.FAILED_PRECONDITION, "PRODUCER_FENCED"),
    "UnknownProducerError": (Code.NOT_FOUND, "UNKNOWN_PRODUCER"),
    # records
    "RecordBatchError": (Code.INVALID_ARGUMENT, "CORRUPT_MESSAGE"),
    "BatchTooLargeError": (Code.INVALID_ARGUMENT, "MESSAGE_TOO_LARGE"),
    # log and WAL
    "WalFullError": (Code.RESOURCE_EXHAUSTED, "BACKPRESSURE"),
    "NotLeaderError": (Code.UNAVAILABLE, "NOT_LEADER"),
    "OutOfOrderSequenceError": (Code.FAILED_PRECONDITION, "OUT_OF_ORDER_SEQUENCE"),
    "OffsetOutOfRangeError": (Code.OUT_OF_RANGE, "OFFSET_OUT_OF_RANGE"),
    # groups
    "NotCoordinatorError": (Code.UNAVAILABLE, "NOT_COORDINATOR"),
    "GroupActiveError": (Code.FAILED_PRECONDITION, "GROUP_NOT_EMPTY"),
    "NonEmptyGroupError": (Code.FAILED_PRECONDITION, "GROUP_NOT_EMPTY"),
    "GroupIdNotFoundError": (Code.NOT_FOUND, "UNKNOWN_GROUP"),
    "UnknownMemberIdError": (Code.NOT_FOUND, "UNKNOWN_MEMBER"),
    "IllegalGenerationError": (Code.FAILED_PRECONDITION, "ILLEGAL_GENERATION"),
    "RebalanceInProgressError": (Code.FAILED_PRECONDITION, "REBALANCE_IN_PROGRESS"),
    "InconsistentGroupProtocolError": (
        Code.FAILED_PRECONDITION,
        "INCONSISTENT_GROUP_PROTOCOL",
    ),
    "InvalidSessionTimeoutError": (Code.INVALID_ARGUMENT, "INVALID_REQUEST"),
    "InvalidGroupIdError": (Code.INVALID_ARGUMENT, "INVALID_REQUEST"),
    "GroupProtocolError": (Code.INVALID_ARGUMENT, "INVALID_REQUEST"),
    "MemberIdRequiredError": (Code.FAILED_PRECONDITION, "MEMBER_ID_REQUIRED"),
    "CoordinatorNotAvailableError": (Code.UNAVAILABLE, "NOT_COORDINATOR"),
    # generic
    "TimeoutError": (Code.DEADLINE_EXCEEDED, "TIMEOUT"),
    "ValueError": (Code.INVALID_ARGUMENT, "INVALID_REQUEST"),
    "LookupError": (Code.NOT_FOUND, "INVALID_REQUEST"),
}


@dataclass(frozen=True)
class MappedError:
    code: grpc.StatusCode
    reason: str
    message: str
    leader_address: str = ""

    def to_proto(self) -> broker_pb2.Error:
        return broker_pb2.Error(
            code=self.code.value[0],
            message=self.message,
            leader_address=self.leader_address,
            reason=self.reason,
        )

    def trailers(self) -> tuple[tuple[str, str], ...]:
        items = [(REASON_KEY, self.reason)]
        if self.leader_address:
            items.append((LEADER_KEY, self.leader_address))
        return tuple(items)


def map_error(exc: BaseException) -> MappedError:
    for cls in type(exc).__mro__:
        entry = _BY_NAME.get(cls.__name__)
        if entry is not None:
            code, reason = entry
            leader = getattr(exc, "leader_address", "") or ""
            return MappedError(code, reason, str(exc) or cls.__name__, leader)
    log.error("unexpected error in a gRPC call", exc_info=exc)
    return MappedError(Code.INTERNAL, "INTERNAL", f"internal error: {type(exc).__name__}: {exc}")


OK = broker_pb2.Error()


def error_proto(exc: BaseException | None) -> broker_pb2.Error:
    return OK if exc is None else map_error(exc).to_proto()
