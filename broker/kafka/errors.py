"""Kafka protocol error codes, and our exceptions mapped to them.

Handlers never invent codes: they call ``error_code(exc)``, which walks the exception's MRO
through a table keyed by class name (so a subclass inherits its parent's code and the most
specific entry wins). Group coordinator errors carry their own ``kafka_code``. Anything unknown
is UNKNOWN_SERVER_ERROR and logged, because it is a bug on our side, not bad input.
"""

from __future__ import annotations

import enum
import logging

log = logging.getLogger("streamhouse.kafka")


class ErrorCode(enum.IntEnum):
    UNKNOWN_SERVER_ERROR = -1
    NONE = 0
    OFFSET_OUT_OF_RANGE = 1
    CORRUPT_MESSAGE = 2
    UNKNOWN_TOPIC_OR_PARTITION = 3
    INVALID_FETCH_SIZE = 4
    LEADER_NOT_AVAILABLE = 5
    NOT_LEADER_OR_FOLLOWER = 6
    REQUEST_TIMED_OUT = 7
    MESSAGE_TOO_LARGE = 10
    OFFSET_METADATA_TOO_LARGE = 12
    NETWORK_EXCEPTION = 13
    COORDINATOR_LOAD_IN_PROGRESS = 14
    COORDINATOR_NOT_AVAILABLE = 15
    NOT_COORDINATOR = 16
    INVALID_TOPIC_EXCEPTION = 17
    RECORD_LIST_TOO_LARGE = 18
    NOT_ENOUGH_REPLICAS = 19
    INVALID_REQUIRED_ACKS = 21
    ILLEGAL_GENERATION = 22
    INCONSISTENT_GROUP_PROTOCOL = 23
    INVALID_GROUP_ID = 24
    UNKNOWN_MEMBER_ID = 25
    INVALID_SESSION_TIMEOUT = 26
    REBALANCE_IN_PROGRESS = 27
    INVALID_COMMIT_OFFSET_SIZE = 28
    TOPIC_AUTHORIZATION_FAILED = 29
    GROUP_AUTHORIZATION_FAILED = 30
    CLUSTER_AUTHORIZATION_FAILED = 31
    INVALID_TIMESTAMP = 32
    UNSUPPORTED_SASL_MECHANISM = 33
    ILLEGAL_SASL_STATE = 34
    UNSUPPORTED_VERSION = 35
    TOPIC_ALREADY_EXISTS = 36
    INVALID_PARTITIONS = 37
    INVALID_REPLICATION_FACTOR = 38
    INVALID_REPLICA_ASSIGNMENT = 39
    INVALID_CONFIG = 40
    NOT_CONTROLLER = 41
    INVALID_REQUEST = 42
    UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
    POLICY_VIOLATION = 44
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45
    DUPLICATE_SEQUENCE_NUMBER = 46
    INVALID_PRODUCER_EPOCH = 47
    INVALID_TXN_STATE = 48
    INVALID_PRODUCER_ID_MAPPING = 49
    INVALID_TRANSACTION_TIMEOUT = 50
    CONCURRENT_TRANSACTIONS = 51
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
    SECURITY_DISABLED = 54
    KAFKA_STORAGE_ERROR = 56
    SASL_AUTHENTICATION_FAILED = 58
    UNKNOWN_PRODUCER_ID = 59
    REASSIGNMENT_IN_PROGRESS = 60
    GROUP_ID_NOT_FOUND = 69
    NON_EMPTY_GROUP = 68
    FENCED_LEADER_EPOCH = 74
    UNKNOWN_LEADER_EPOCH = 75
    MEMBER_ID_REQUIRED = 79
    GROUP_MAX_SIZE_REACHED = 81
    FENCED_INSTANCE_ID = 82
    THROTTLING_QUOTA_EXCEEDED = 89
    PRODUCER_FENCED = 90
    UNKNOWN_TOPIC_ID = 100
    TRANSACTIONAL_ID_NOT_FOUND = 105


_BY_NAME: dict[str, ErrorCode] = {
    # metadata
    "UnknownTopicError": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    "UnknownPartitionError": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    "TopicExistsError": ErrorCode.TOPIC_ALREADY_EXISTS,
    "InvalidTopicError": ErrorCode.INVALID_TOPIC_EXCEPTION,
    "InvalidPartitionsError": ErrorCode.INVALID_PARTITIONS,
    "InvalidConfigError": ErrorCode.INVALID_CONFIG,
    "InvalidRequestError": ErrorCode.INVALID_REQUEST,
    "FencedError": ErrorCode.NOT_LEADER_OR_FOLLOWER,
    "LeaseHeldError": ErrorCode.NOT_LEADER_OR_FOLLOWER,
    "ProducerFencedError": ErrorCode.INVALID_PRODUCER_EPOCH,
    "UnknownProducerError": ErrorCode.UNKNOWN_PRODUCER_ID,
    # records
    "RecordBatchError": ErrorCode.CORRUPT_MESSAGE,
    "UnsupportedMagicError": ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT,
    "BatchTooLargeError": ErrorCode.MESSAGE_TOO_LARGE,
    "UnsupportedCompressionError": ErrorCode.CORRUPT_MESSAGE,
    # log and WAL
    "WalFullError": ErrorCode.KAFKA_STORAGE_ERROR,
    "NotLeaderError": ErrorCode.NOT_LEADER_OR_FOLLOWER,
    "OutOfOrderSequenceError": ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
    "OffsetOutOfRangeError": ErrorCode.OFFSET_OUT_OF_RANGE,
    # group service
    "NotCoordinatorError": ErrorCode.NOT_COORDINATOR,
    "GroupActiveError": ErrorCode.NON_EMPTY_GROUP,
    # generic
    "TimeoutError": ErrorCode.REQUEST_TIMED_OUT,
    "ValueError": ErrorCode.INVALID_REQUEST,
}


def error_code(exc: BaseException | None) -> int:
    """The Kafka error code for ``exc`` (0 for None)."""
    if exc is None:
        return ErrorCode.NONE
    code = getattr(exc, "kafka_code", None)
    if isinstance(code, int):
        return code
    for cls in type(exc).__mro__:
        mapped = _BY_NAME.get(cls.__name__)
        if mapped is not None:
            return mapped
    log.error("unexpected error in a Kafka request", exc_info=exc)
    return ErrorCode.UNKNOWN_SERVER_ERROR


def error_message(exc: BaseException | None) -> str | None:
    """The message to put beside the code where the version carries one."""
    return None if exc is None else str(exc) or type(exc).__name__
