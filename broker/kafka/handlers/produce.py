"""Produce and InitProducerId: Kafka producers writing RecordBatches into partition logs.

Each partition's record set is split into batches by their length fields only; the partitions
of a topic are then appended together (concurrently) through ``BrokerService.produce`` without
its up-front check, so each partition's log validates its own batches once before storing any:
a bad batch fails its partition and no other. The bytes are stored as received: the log stamps
the base offset, which the CRC does not cover. Transactions are not served: transactional
batches and transactional ids are refused with a fatal code, so clients fail fast instead of
retrying."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.context import RequestContext
from streamhouse.broker.kafka.errors import ErrorCode, error_code, error_message
from streamhouse.broker.kafka.handlers.cluster import auto_create
from streamhouse.broker.log import Acks, NotLeaderError
from streamhouse.broker.metadata import (
    InvalidRequestError,
    InvalidTopicError,
    Topic,
    UnknownPartitionError,
    UnknownProducerError,
    UnknownTopicError,
)
from streamhouse.broker.records import (
    BatchLengthError,
    TruncatedBatchError,
    UnsupportedMagicError,
)
from streamhouse.broker.records.header import (
    ATTRIBUTES_POS,
    CONTROL_MASK,
    LENGTH_POS,
    LOG_OVERHEAD,
    MAGIC,
    MAGIC_POS,
    MIN_BATCH_LENGTH,
    TRANSACTIONAL_MASK,
)
from streamhouse.broker.service.broker import PartitionProduceResult, is_internal

DEFAULT_TIMEOUT_S = 30.0
# Kafka's code for a transactional id the client may not use: fatal in every client, which is
# what we want while transactions are not served (a retriable code would loop forever).
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
TRANSACTIONS_UNSUPPORTED = "transactions are not supported by this broker"

_ACKS = {0: Acks.NONE, 1: Acks.LEADER, -1: Acks.ALL}
_LENGTH = struct.Struct(">i")
_ATTRIBUTES_LOW_POS = ATTRIBUTES_POS + 1  # the flags live in the low byte of the big-endian int16
_TRANSACTIONAL_OR_CONTROL = TRANSACTIONAL_MASK | CONTROL_MASK


class TransactionsUnsupportedError(Exception):
    """A transactional request or batch: refused whole, as transactions are not served."""

    kafka_code = TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def split_record_set(records: bytes | None) -> list[bytes | memoryview]:
    """The batches of one partition's record set, cut by their length fields only.

    Content (CRC, records, size limit) is validated by the partition's log before any of it is
    stored; this only finds the boundaries, rejects the old message formats by their magic byte
    (at the same offset in every format) and refuses transactional and control batches.
    """
    if not records:
        raise InvalidRequestError("the partition's record set is empty")
    total = len(records)
    view = memoryview(records)
    batches: list[bytes | memoryview] = []
    pos = 0
    while pos < total:
        where = f"batch {len(batches)} at byte {pos} of the record set"
        if total - pos <= MAGIC_POS:
            raise TruncatedBatchError(f"{where}: {total - pos} trailing bytes are too few")
        magic = records[pos + MAGIC_POS]
        if magic != MAGIC:
            raise UnsupportedMagicError(
                f"{where}: message format v{magic} is not supported; "
                "only RecordBatch v2 (Kafka 0.11+ clients) is accepted"
            )
        (length,) = _LENGTH.unpack_from(records, pos + LENGTH_POS)
        if length < MIN_BATCH_LENGTH:
            raise BatchLengthError(f"{where}: declared batch length {length} is too small")
        end = pos + length + LOG_OVERHEAD
        if end > total:
            raise TruncatedBatchError(
                f"{where}: declared length needs {end - pos} bytes but only {total - pos} remain"
            )
        if records[pos + _ATTRIBUTES_LOW_POS] & _TRANSACTIONAL_OR_CONTROL:
            raise TransactionsUnsupportedError(f"{where}: {TRANSACTIONS_UNSUPPORTED}")
        batches.append(records if pos == 0 and end == total else view[pos:end])
        pos = end
    return batches


def _partition_response(
    index: int, error: BaseException | None = None, code: int | None = None
) -> dict[str, Any]:
    return {
        "index": index,
        "error_code": error_code(error) if code is None else code,
        "base_offset": -1,
        "log_append_time_ms": -1,
        "log_start_offset": -1,
        "record_errors": (),
        "error_message": error_message(error),
    }


async def _topic_or_create(ctx: RequestContext, name: str) -> Topic:
    if is_internal(name):
        raise InvalidTopicError(f"topic {name!r} is internal; Kafka producers may not write it")
    try:
        return await ctx.broker.topic(name)
    except UnknownTopicError:
        if not ctx.cluster.settings.auto_create_topics:
            raise
        return await auto_create(ctx.cluster, name)


async def _produce_topic(
    ctx: RequestContext, topic: dict[str, Any], acks: Acks, timeout_s: float
) -> dict[str, Any]:
    """One topic of the request: every partition answered, each on its own."""
    name = topic["name"]
    entries = topic["partition_data"]
    try:
        meta = await _topic_or_create(ctx, name)
    except Exception as exc:
        return {
            "name": name,
            "partition_responses": [_partition_response(p["index"], exc) for p in entries],
        }

    counts: dict[int, int] = {}
    for entry in entries:
        counts[entry["index"]] = counts.get(entry["index"], 0) + 1
    responses: list[dict[str, Any] | None] = []
    work: dict[int, list[bytes | memoryview]] = {}
    slots: dict[int, int] = {}
    for entry in entries:
        index = entry["index"]
        try:
            if counts[index] > 1:
                raise InvalidRequestError(f"partition {index} appears more than once")
            if not 0 <= index < meta.partitions:
                raise UnknownPartitionError(
                    f"topic {name!r} has partitions 0..{meta.partitions - 1}, not {index}"
                )
            work[index] = split_record_set(entry["records"])
            slots[index] = len(responses)
            responses.append(None)
        except Exception as exc:
            responses.append(_partition_response(index, exc))
    if work:
        try:
            # Each partition's log validates its batches before storing any of them, so a bad
            # batch fails its own partition only and every batch is validated once.
            outcomes = await ctx.broker.produce(name, work, acks, timeout_s, prevalidate=False)
        except Exception as exc:  # the topic went away, or partitions shrank meanwhile
            outcomes = [PartitionProduceResult(p, error=exc) for p in work]
        for outcome in outcomes:
            responses[slots[outcome.partition]] = await _answer(ctx, name, outcome)
    return {"name": name, "partition_responses": responses}


async def _answer(
    ctx: RequestContext, topic: str, outcome: PartitionProduceResult
) -> dict[str, Any]:
    partition = outcome.partition
    if outcome.error is not None:
        response = _partition_response(partition, outcome.error)
        if isinstance(outcome.error, NotLeaderError) and outcome.error.leader_agent:
            node = await ctx.cluster.node_of_agent(outcome.error.leader_agent)
            if node is not None:  # v10+: clients go straight to the leader (KIP-951)
                response["current_leader"] = {"leader_id": node.node_id, "leader_epoch": -1}
                ctx.extra.setdefault("node_endpoints", {})[node.node_id] = node
        return response
    result = outcome.result
    assert result is not None
    plog = ctx.broker.manager.local_partition(topic, partition)
    return {
        "index": partition,
        "error_code": 0,
        "base_offset": min(result.base_offsets) if result.base_offsets else -1,
        "log_append_time_ms": -1,  # CreateTime topics only: producers' timestamps are kept
        "log_start_offset": plog.log_start_offset if plog is not None else -1,
        "record_errors": (),
        "error_message": None,
    }


def _every_partition(request: dict[str, Any], code: int, message: str) -> list[dict[str, Any]]:
    return [
        {
            "name": topic["name"],
            "partition_responses": [
                {**_partition_response(p["index"], code=code), "error_message": message}
                for p in topic["partition_data"]
            ],
        }
        for topic in request["topic_data"]
    ]


async def handle_produce(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any] | None:
    acks = _ACKS.get(request["acks"])
    timeout_ms = request["timeout_ms"]
    timeout_s = timeout_ms / 1000 if timeout_ms > 0 else DEFAULT_TIMEOUT_S
    if acks is None:
        topics = _every_partition(
            request,
            ErrorCode.INVALID_REQUIRED_ACKS,
            f"acks must be 0, 1 or -1 (all), not {request['acks']}",
        )
    elif request["transactional_id"] is not None:
        topics = _every_partition(
            request, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, TRANSACTIONS_UNSUPPORTED
        )
    else:
        items = request["topic_data"]
        if len(items) == 1:
            topics = [await _produce_topic(ctx, items[0], acks, timeout_s)]
        else:
            topics = list(
                await asyncio.gather(*(_produce_topic(ctx, t, acks, timeout_s) for t in items))
            )
    if request["acks"] == 0:
        failed = [
            p["error_message"] or str(p["error_code"])
            for t in topics
            for p in t["partition_responses"]
            if p["error_code"]
        ]
        if failed:
            # No response goes out with acks=0, so Kafka closes the connection instead: the
            # client reconnects and refreshes its metadata.
            from streamhouse.broker.kafka.connection import CloseConnection

            raise CloseConnection(f"acks=0 produce failed: {failed[0]}")
        return None
    response: dict[str, Any] = {"responses": topics, "throttle_time_ms": 0}
    endpoints = ctx.extra.get("node_endpoints")
    if endpoints:
        response["node_endpoints"] = [
            {"node_id": n.node_id, "host": n.host, "port": n.port, "rack": None}
            for n in endpoints.values()
        ]
    return response


async def handle_init_producer_id(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    """Allocates an idempotent producer id, or bumps the epoch of the one the client names."""
    refused = {"throttle_time_ms": 0, "producer_id": -1, "producer_epoch": -1}
    if request["transactional_id"] is not None:
        return {**refused, "error_code": TRANSACTIONAL_ID_AUTHORIZATION_FAILED}
    producer_id, epoch = request["producer_id"], request["producer_epoch"]
    if (producer_id < 0) != (epoch < 0):
        return {**refused, "error_code": ErrorCode.INVALID_REQUEST}
    try:
        if producer_id >= 0:
            try:
                producer_id, epoch = await ctx.broker.metadata.init_producer(producer_id)
            except UnknownProducerError:  # never ours: a fresh id, as Kafka gives one anyway
                producer_id, epoch = await ctx.broker.metadata.init_producer(None)
        else:
            producer_id, epoch = await ctx.broker.metadata.init_producer(None)
    except Exception as exc:
        return {**refused, "error_code": error_code(exc)}
    return {"throttle_time_ms": 0, "error_code": 0, "producer_id": producer_id,
            "producer_epoch": epoch}  # fmt: skip


HANDLERS = {
    apis.PRODUCE: handle_produce,
    apis.INIT_PRODUCER_ID: handle_init_producer_id,
}
