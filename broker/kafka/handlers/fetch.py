"""Fetch (API 1, v4-12): stored batches go out as they are, across every requested partition.

Kafka's rules, which clients depend on:

* ``max_bytes`` bounds the whole response and ``partition_max_bytes`` each partition, except
  that the first batch of the first partition with data is returned whole even when larger, so
  a consumer always progresses. Batches are never split or re-encoded; one may start before the
  fetch offset (clients skip records below their position).
* Long poll: while fewer than ``min_bytes`` are ready the request waits up to ``max_wait_ms``,
  woken as soon as any requested partition (of any topic) gets data; an error in any partition
  answers at once.
* Fetch sessions (v7+) are not kept: every answer is a full response with ``session_id`` 0,
  which tells clients to keep sending full requests. An incremental request (a session id we
  never handed out) gets FETCH_SESSION_ID_NOT_FOUND so the client starts over.
* There are no transactions, so the last stable offset is the high watermark and
  ``aborted_transactions`` is empty.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field
from typing import Any

from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.context import RequestContext
from streamhouse.broker.kafka.errors import error_code
from streamhouse.broker.log import OffsetOutOfRangeError, PartitionLog
from streamhouse.broker.log.waiting import wait_for_any
from streamhouse.broker.metadata import Topic, UnknownPartitionError, UnknownTopicError
from streamhouse.broker.service import metrics
from streamhouse.broker.service.broker import is_internal

FETCH_SESSION_ID_NOT_FOUND = 70
MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # whatever a client asks, one response stays below this
_LAST_OFFSET_DELTA = struct.Struct(">i")  # at byte 23 of a v2 record batch
_LAST_OFFSET_DELTA_AT = 23


async def topic_for_client(ctx: RequestContext, name: str) -> Topic:
    """The topic as Kafka clients see it: internal topics do not exist for them (Metadata
    hides them too).

    Raises:
        UnknownTopicError.
    """
    if is_internal(name):
        raise UnknownTopicError(f"topic {name!r} is internal")
    return await ctx.broker.topic(name)


async def partition_log(
    ctx: RequestContext, topic: Topic, partition: int, *, write: bool = False
) -> PartitionLog:
    """The local log of ``topic[partition]``, claiming the partition when nobody leads it.

    A partition this agent is handing over is still read here (it holds the data until the
    taker claims it); ``write=True`` refuses it, as an append would be.

    Raises:
        UnknownPartitionError, NotLeaderError (another agent leads it).
    """
    if not 0 <= partition < topic.partitions:
        raise UnknownPartitionError(
            f"topic {topic.name!r} has partitions 0..{topic.partitions - 1}, not {partition}"
        )
    manager = ctx.broker.manager
    if not write:
        plog = manager.local_partition(topic.name, partition)
        if plog is not None:
            return plog
    return await manager.partition(topic.name, partition)


@dataclass(slots=True)
class _Read:
    """One requested partition that can be read, and its entry in the response."""

    topic: str
    entry: dict[str, Any]
    plog: PartitionLog
    offset: int
    max_bytes: int
    seen_end: int = 0  # high watermark at the last read: a long poll waits for more than that
    batches: list[bytes] = field(default_factory=list)


async def handle_fetch(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    if request["session_id"] != 0 and request["session_epoch"] > 0:
        return {
            "throttle_time_ms": 0,
            "error_code": FETCH_SESSION_ID_NOT_FOUND,
            "session_id": 0,
            "responses": [],
        }
    responses, reads, failed = await _resolve(ctx, request["topics"])
    max_bytes = min(request["max_bytes"], MAX_RESPONSE_BYTES)
    min_bytes = request["min_bytes"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(request["max_wait_ms"], 0) / 1000
    while True:
        ready, read_failed = await _read_all(reads, max_bytes)
        remaining = deadline - loop.time()
        if ready >= min_bytes or failed or read_failed or remaining <= 0:
            break
        await _wait_for_data(reads, remaining)
    _count(reads)
    return {"throttle_time_ms": 0, "error_code": 0, "session_id": 0, "responses": responses}


async def _resolve(
    ctx: RequestContext, topics: Any
) -> tuple[list[dict[str, Any]], list[_Read], bool]:
    """Response entries for every requested partition, and the readable ones among them."""
    responses: list[dict[str, Any]] = []
    reads: list[_Read] = []
    failed = False
    for wanted in topics:
        name = wanted["topic"]
        entries: list[dict[str, Any]] = []
        responses.append({"topic": name, "partitions": entries})
        topic: Topic | None = None
        topic_error: Exception | None = None
        try:
            topic = await topic_for_client(ctx, name)
        except Exception as exc:
            topic_error = exc
        for asked in wanted["partitions"]:
            entry = _empty_entry(asked["partition"])
            entries.append(entry)
            try:
                if topic_error is not None:
                    raise topic_error
                assert topic is not None
                plog = await partition_log(ctx, topic, asked["partition"])
            except Exception as exc:
                entry["error_code"] = error_code(exc)
                failed = True
                continue
            reads.append(
                _Read(name, entry, plog, asked["fetch_offset"], asked["partition_max_bytes"])
            )
    return responses, reads, failed


def _empty_entry(partition: int) -> dict[str, Any]:
    return {
        "partition_index": partition,
        "error_code": 0,
        "high_watermark": -1,
        "last_stable_offset": -1,
        "log_start_offset": -1,
        "aborted_transactions": [],
        "preferred_read_replica": -1,
        "records": b"",
    }


async def _read_all(reads: list[_Read], max_bytes: int) -> tuple[int, bool]:
    """Reads every partition within the byte limits; returns (bytes ready, any error)."""
    budget = max_bytes
    total = 0
    failed = False
    for read in reads:
        entry = read.entry
        plog = read.plog
        try:
            start, end = plog.log_start_offset, plog.high_watermark
            if not start <= read.offset <= end:
                raise OffsetOutOfRangeError(
                    plog.topic.name, plog.partition, read.offset, start, end
                )
            batches: list[bytes] = []
            limit = min(read.max_bytes, budget)
            if read.offset < end and (limit > 0 or total == 0):
                batches = _within(await plog.read(read.offset, max(limit, 1)), limit, total == 0)
        except Exception as exc:
            entry.update(_empty_entry(entry["partition_index"]))
            entry["error_code"] = error_code(exc)
            read.batches = []
            failed = True
            continue
        size = sum(map(len, batches))
        total += size
        budget -= size
        end = plog.high_watermark  # after the read: it covers every batch returned
        read.seen_end = end
        read.batches = batches
        entry["error_code"] = 0
        entry["high_watermark"] = end
        entry["last_stable_offset"] = end
        entry["log_start_offset"] = plog.log_start_offset
        entry["records"] = batches or b""
    return total, failed


def _within(batches: list[bytes], limit: int, first_may_exceed: bool) -> list[bytes]:
    """The leading batches that fit ``limit``; the first one regardless when allowed."""
    total = 0
    for count, batch in enumerate(batches):
        total += len(batch)
        if total > limit and (count or not first_may_exceed):
            return batches[:count]
    return batches


async def _wait_for_data(reads: list[_Read], timeout_s: float) -> None:
    """Returns when any partition grows past what was last read, or after ``timeout_s``."""
    await wait_for_any([(read.plog, read.seen_end) for read in reads], timeout_s)


def _count(reads: list[_Read]) -> None:
    """Fetch volume metrics, from batch headers only."""
    by_topic: dict[str, tuple[int, int]] = {}
    for read in reads:
        if not read.batches:
            continue
        records, size = by_topic.get(read.topic, (0, 0))
        for batch in read.batches:
            records += _LAST_OFFSET_DELTA.unpack_from(batch, _LAST_OFFSET_DELTA_AT)[0] + 1
            size += len(batch)
        by_topic[read.topic] = (records, size)
    for topic, (records, size) in by_topic.items():
        metrics.FETCH_RECORDS.labels(topic).inc(records)
        metrics.FETCH_BYTES.labels(topic).inc(size)


HANDLERS = {apis.FETCH: handle_fetch}
