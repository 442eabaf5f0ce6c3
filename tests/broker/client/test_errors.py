"""Server failures become exceptions a caller can catch by kind, with the server's details."""

from __future__ import annotations

import pickle

import grpc
import pytest
from streamhouse.broker.client import errors as e
from streamhouse.broker.rpc.v1 import broker_pb2 as pb

C = grpc.StatusCode


def rpc_error(code: grpc.StatusCode, details: str, **trailers: str) -> grpc.aio.AioRpcError:
    metadata = grpc.aio.Metadata(*((k.replace("_", "-"), v) for k, v in trailers.items()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), metadata, details)


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (C.NOT_FOUND, "UNKNOWN_TOPIC", e.NotFoundError),
        (C.NOT_FOUND, "UNKNOWN_PARTITION", e.NotFoundError),
        (C.NOT_FOUND, "UNKNOWN_MEMBER", e.GroupNotFoundError),
        (C.ALREADY_EXISTS, "TOPIC_EXISTS", e.AlreadyExistsError),
        (C.INVALID_ARGUMENT, "CORRUPT_MESSAGE", e.InvalidRequestError),
        (C.INVALID_ARGUMENT, "MESSAGE_TOO_LARGE", e.InvalidRequestError),
        (C.RESOURCE_EXHAUSTED, "BACKPRESSURE", e.BackpressureError),
        (C.UNAVAILABLE, "NOT_LEADER", e.NotLeaderError),
        (C.UNAVAILABLE, "NOT_COORDINATOR", e.NotLeaderError),
        (C.FAILED_PRECONDITION, "PRODUCER_FENCED", e.FencedError),
        (C.FAILED_PRECONDITION, "FENCED_LEADER", e.FencedError),
        (C.FAILED_PRECONDITION, "OUT_OF_ORDER_SEQUENCE", e.OutOfOrderSequenceError),
        (C.FAILED_PRECONDITION, "REBALANCE_IN_PROGRESS", e.RebalanceInProgressError),
        (C.FAILED_PRECONDITION, "ILLEGAL_GENERATION", e.GroupError),
        (C.FAILED_PRECONDITION, "GROUP_NOT_EMPTY", e.GroupError),
        (C.OUT_OF_RANGE, "OFFSET_OUT_OF_RANGE", e.OffsetOutOfRangeError),
        (C.DEADLINE_EXCEEDED, "TIMEOUT", e.RequestTimeoutError),
        # No reason (a proxy, or grpc itself): the status decides.
        (C.NOT_FOUND, "", e.NotFoundError),
        (C.INVALID_ARGUMENT, "", e.InvalidRequestError),
        (C.UNAVAILABLE, "", e.UnavailableError),
        (C.INTERNAL, "", e.StreamHouseError),
        (C.INTERNAL, "A_REASON_FROM_THE_FUTURE", e.StreamHouseError),
    ],
)
def test_status_and_reason_pick_the_class(code, reason, cls) -> None:
    trailers = {"streamhouse_error": reason} if reason else {}
    error = e.from_rpc_error(rpc_error(code, "it failed", **trailers), "10.0.0.1:50051")
    assert type(error) is cls
    assert error.code is code and error.reason == reason
    assert "it failed" in str(error)


def test_leader_hint_and_retryability() -> None:
    error = e.from_rpc_error(
        rpc_error(
            C.UNAVAILABLE, "not mine", streamhouse_error="NOT_LEADER", streamhouse_leader="b:1"
        )
    )
    assert isinstance(error, e.NotLeaderError)
    assert error.leader_address == "b:1" and error.retryable
    assert e.make_error(C.RESOURCE_EXHAUSTED, "full", "BACKPRESSURE").retryable
    assert e.make_error(C.DEADLINE_EXCEEDED, "slow").retryable
    assert not e.make_error(C.INVALID_ARGUMENT, "bad", "CORRUPT_MESSAGE").retryable
    assert not e.make_error(C.FAILED_PRECONDITION, "old", "PRODUCER_FENCED").retryable
    assert not e.make_error(C.RESOURCE_EXHAUSTED, "big", "MESSAGE_TOO_LARGE").retryable


def test_unreachable_names_the_address() -> None:
    error = e.from_rpc_error(rpc_error(C.UNAVAILABLE, "failed to connect"), "127.0.0.1:1")
    assert isinstance(error, e.UnavailableError)
    assert "cannot reach StreamHouse at 127.0.0.1:1" in str(error)


def test_per_partition_error_messages() -> None:
    assert e.from_proto(pb.Error()) is None
    error = e.from_proto(
        pb.Error(code=14, message="moved", leader_address="x:2", reason="NOT_LEADER"), "a:1"
    )
    assert isinstance(error, e.NotLeaderError)
    assert (error.code, error.leader_address, str(error)) == (C.UNAVAILABLE, "x:2", "moved")
    unknown = e.from_proto(pb.Error(code=999, message=""))
    assert type(unknown) is e.StreamHouseError and unknown.code is C.UNKNOWN


def test_errors_survive_pickling() -> None:
    error = e.make_error(C.UNAVAILABLE, "moved", "NOT_LEADER", "b:9")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is e.NotLeaderError
    assert (copy.code, copy.reason, copy.leader_address, str(copy)) == (
        C.UNAVAILABLE,
        "NOT_LEADER",
        "b:9",
        "moved",
    )


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (C.INTERNAL, "Internal error from Core"),
        (C.UNKNOWN, "Stream removed"),
        (C.INTERNAL, "Received RST_STREAM with error code 2"),
        (C.UNKNOWN, "Socket closed"),
    ],
)
def test_a_connection_breaking_under_a_call_is_retryable(code, details) -> None:
    error = e.from_rpc_error(rpc_error(code, details), "h:1")
    assert isinstance(error, e.UnavailableError) and error.retryable
    assert "cannot reach StreamHouse at h:1" in str(error) and details in str(error)


def test_a_server_side_internal_error_is_not_retried() -> None:
    error = e.from_rpc_error(rpc_error(C.INTERNAL, "boom", streamhouse_error="INTERNAL"))
    assert type(error) is e.StreamHouseError and not error.retryable
    assert not e.from_rpc_error(rpc_error(C.INTERNAL, "assertion failed")).retryable
