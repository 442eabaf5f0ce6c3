"""What can go wrong talking to StreamHouse, as exceptions a caller can catch by kind.

The server reports a gRPC status plus a machine-readable reason (trailer ``streamhouse-error``
or ``Error.reason`` inside per-partition results, see ``broker.proto``). The reason is more
precise than the status (UNAVAILABLE means both "not the leader" and "nobody answers"), so it
picks the class; the status is the fallback when a reason is missing (a proxy, grpc itself).
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc

REASON_KEY = "streamhouse-error"
LEADER_KEY = "streamhouse-leader"

_STATUS_BY_NUMBER = {status.value[0]: status for status in grpc.StatusCode}
_RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)
_NOT_RETRYABLE_REASONS = frozenset({"MESSAGE_TOO_LARGE"})
# How grpc reports a connection that broke under a call (server killed, socket reset). The
# server itself always sends a reason, so these without one are transport failures.
_TRANSPORT_CODES = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
_TRANSPORT_HINTS = (
    "error from core",
    "socket closed",
    "stream removed",
    "connection reset",
    "goaway",
    "broken pipe",
    "rst_stream",
    "end of stream",
)


class StreamHouseError(Exception):
    """Base of every client error.

    Attributes:
        code: the gRPC status of the failure.
        reason: the server's machine-readable reason (``UNKNOWN_TOPIC``, ...), or "".
        leader_address: with NOT_LEADER / NOT_COORDINATOR, the agent to ask instead.
    """

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        reason: str = "",
        leader_address: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.leader_address = leader_address

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later (leader moved, server busy or back)."""
        return self.code in _RETRYABLE_CODES and self.reason not in _NOT_RETRYABLE_REASONS

    def __reduce__(self):  # keeps keyword-only attributes across pickling (process pools)
        return (_rebuild, (type(self), str(self), self.code, self.reason, self.leader_address))


def _rebuild(cls, message, code, reason, leader_address):
    return cls(message, code=code, reason=reason, leader_address=leader_address)


class NotFoundError(StreamHouseError):
    """Unknown topic, partition, group or member."""


class AlreadyExistsError(StreamHouseError):
    """The topic exists already."""


class InvalidRequestError(StreamHouseError):
    """The server refused the request as malformed: bad config, corrupt or oversized batch."""


class BackpressureError(StreamHouseError):
    """The server is saturated (WAL full, uploads behind); retried automatically."""


class NotLeaderError(StreamHouseError):
    """Another agent leads the partition or coordinates the group (``leader_address``)."""


class FencedError(StreamHouseError):
    """A newer producer instance or partition leader took over; this one must stop."""


class OutOfOrderSequenceError(StreamHouseError):
    """The server lost track of this idempotent producer's sequence: records may be missing."""


class OffsetOutOfRangeError(StreamHouseError):
    """The position is outside the partition's stored offsets."""


class RequestTimeoutError(StreamHouseError):
    """The server did not complete the request in time; the outcome is unknown."""


class GroupError(StreamHouseError):
    """A consumer-group operation failed: stale generation, non-empty group, ..."""


class RebalanceInProgressError(GroupError):
    """The group is rebalancing; the member must rejoin before it commits."""


class GroupNotFoundError(NotFoundError, GroupError):
    """The coordinator does not know this group or member (session expired, group deleted)."""


class UnavailableError(StreamHouseError):
    """The server at an address cannot be reached (or answered nothing in time)."""


class NoOffsetError(StreamHouseError):
    """A partition has no committed offset and ``auto_offset_reset`` is "error"."""


_BY_REASON: dict[str, type[StreamHouseError]] = {
    "UNKNOWN_TOPIC": NotFoundError,
    "UNKNOWN_PARTITION": NotFoundError,
    "UNKNOWN_PRODUCER": NotFoundError,
    "UNKNOWN_GROUP": GroupNotFoundError,
    "UNKNOWN_MEMBER": GroupNotFoundError,
    "TOPIC_EXISTS": AlreadyExistsError,
    "INVALID_REQUEST": InvalidRequestError,
    "INVALID_CONFIG": InvalidRequestError,
    "CORRUPT_MESSAGE": InvalidRequestError,
    "MESSAGE_TOO_LARGE": InvalidRequestError,
    "BACKPRESSURE": BackpressureError,
    "NOT_LEADER": NotLeaderError,
    "NOT_COORDINATOR": NotLeaderError,
    "FENCED_LEADER": FencedError,
    "PRODUCER_FENCED": FencedError,
    "OUT_OF_ORDER_SEQUENCE": OutOfOrderSequenceError,
    "OFFSET_OUT_OF_RANGE": OffsetOutOfRangeError,
    "REBALANCE_IN_PROGRESS": RebalanceInProgressError,
    "ILLEGAL_GENERATION": GroupError,
    "INCONSISTENT_GROUP_PROTOCOL": GroupError,
    "GROUP_NOT_EMPTY": GroupError,
    "MEMBER_ID_REQUIRED": GroupError,
    "TIMEOUT": RequestTimeoutError,
}

_BY_CODE: dict[grpc.StatusCode, type[StreamHouseError]] = {
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.OUT_OF_RANGE: OffsetOutOfRangeError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: BackpressureError,
    grpc.StatusCode.DEADLINE_EXCEEDED: RequestTimeoutError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
}


def make_error(
    code: grpc.StatusCode, message: str, reason: str = "", leader_address: str = "", address=""
) -> StreamHouseError:
    """The exception for a status and reason; ``address`` is the server that was asked."""
    if not reason and code in _TRANSPORT_CODES and _is_transport(message):
        code = grpc.StatusCode.UNAVAILABLE  # the connection broke: as retryable as a refusal
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code, StreamHouseError)
    if cls is UnavailableError and address:
        message = f"cannot reach StreamHouse at {address}: {message}"
    elif cls is RequestTimeoutError and address:
        message = f"{address} did not answer in time: {message}"
    return cls(message, code=code, reason=reason, leader_address=leader_address)


def _is_transport(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in _TRANSPORT_HINTS)


def _trailer(metadata: Iterable[tuple[str, str | bytes]] | None, key: str) -> str:
    for item_key, value in metadata or ():
        if item_key == key:
            return value.decode() if isinstance(value, bytes) else value
    return ""


def from_rpc_error(exc: grpc.RpcError, address: str = "") -> StreamHouseError:
    """Maps a failed call (sync or aio) to the matching exception."""
    code = exc.code() if callable(getattr(exc, "code", None)) else grpc.StatusCode.UNKNOWN
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    trailers = (
        exc.trailing_metadata() if callable(getattr(exc, "trailing_metadata", None)) else None
    )
    return make_error(
        code,
        details or code.name,
        _trailer(trailers, REASON_KEY),
        _trailer(trailers, LEADER_KEY),
        address,
    )


def from_proto(error, address: str = "") -> StreamHouseError | None:
    """The exception an ``Error`` message of a per-partition result stands for, None for OK."""
    if error is None or error.code == 0:
        return None
    code = _STATUS_BY_NUMBER.get(error.code, grpc.StatusCode.UNKNOWN)
    return make_error(code, error.message or code.name, error.reason, error.leader_address, address)
