"""ListOffsets (v0-7), OffsetForLeaderEpoch (v0-4) and DeleteRecords (v0-2).

ListOffsets answers the special timestamps -1 (latest: the high watermark), -2 (earliest: the
log start) and -3 (the first record holding the largest timestamp), and for any other value
the first record at or after the log start whose timestamp reaches it, with that record's own
timestamp, as Kafka does; when no record is that late the answer is offset -1, timestamp -1.
v0 answers with ``old_style_offsets``: the one offset found (the high watermark when no record
is that late, as Kafka's legacy lookup ends with the log end) or none when
``max_num_offsets`` is 0.

Metadata reports leader epoch -1, so OffsetForLeaderEpoch only confirms the leader: it echoes
the asked epoch with the high watermark as the end offset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.context import RequestContext
from streamhouse.broker.kafka.errors import error_code
from streamhouse.broker.kafka.handlers.fetch import partition_log, topic_for_client
from streamhouse.broker.log import PartitionLog
from streamhouse.broker.metadata import Topic

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
DEFAULT_DELETE_TIMEOUT_MS = 30_000

PartitionCall = Callable[[Topic, dict[str, Any]], Awaitable[dict[str, Any]]]


async def _per_partition(
    ctx: RequestContext,
    topics: Any,
    name_field: str,
    index_field: str,
    answer: PartitionCall,
    failed: Callable[[int, int], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Runs ``answer`` for every partition of every topic, concurrently; an error (unknown
    topic or partition, another leader, ...) becomes that partition's ``failed`` entry."""

    async def one(topic: Topic | Exception, asked: dict[str, Any]) -> dict[str, Any]:
        try:
            if isinstance(topic, Exception):
                raise topic
            return await answer(topic, asked)
        except Exception as exc:
            return failed(asked[index_field], error_code(exc))

    out = []
    for wanted in topics:
        name = wanted[name_field]
        topic: Topic | Exception
        try:
            topic = await topic_for_client(ctx, name)
        except Exception as exc:
            topic = exc
        entries = await asyncio.gather(*(one(topic, p) for p in wanted["partitions"]))
        out.append({name_field: name, "partitions": list(entries)})
    return out


# ------------------------------------------------------------------------------ ListOffsets
async def handle_list_offsets(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    old_style = ctx.api_version == 0

    async def answer(topic: Topic, asked: dict[str, Any]) -> dict[str, Any]:
        plog = await partition_log(ctx, topic, asked["partition_index"])
        entry = _offset_entry(asked["partition_index"], 0)
        offset, timestamp = await lookup(plog, asked["timestamp"])
        if old_style:
            found = offset if offset >= 0 else plog.high_watermark
            entry["old_style_offsets"] = [found] if asked["max_num_offsets"] > 0 else []
        else:
            entry["offset"], entry["timestamp"] = offset, timestamp
        return entry

    topics = await _per_partition(
        ctx, request["topics"], "name", "partition_index", answer, _offset_entry
    )
    return {"throttle_time_ms": 0, "topics": topics}


def _offset_entry(partition: int, error: int) -> dict[str, Any]:
    return {
        "partition_index": partition,
        "error_code": error,
        "old_style_offsets": [],
        "timestamp": -1,
        "offset": -1,
        "leader_epoch": -1,
    }


async def lookup(plog: PartitionLog, timestamp: int) -> tuple[int, int]:
    """(offset, timestamp) for a ListOffsets timestamp; -1s when no record answers it."""
    if timestamp == LATEST:
        return plog.high_watermark, -1
    if timestamp == EARLIEST:
        return plog.log_start_offset, -1
    if timestamp == MAX_TIMESTAMP:
        found = await plog.max_timestamp_record()
    else:
        # Any other value is a search (a negative one matches the first readable record).
        found = await plog.record_for_timestamp(timestamp)
    return found if found is not None else (-1, -1)


# --------------------------------------------------------------------- OffsetForLeaderEpoch
async def handle_offset_for_leader_epoch(
    ctx: RequestContext, request: dict[str, Any]
) -> dict[str, Any]:
    async def answer(topic: Topic, asked: dict[str, Any]) -> dict[str, Any]:
        plog = await partition_log(ctx, topic, asked["partition"])
        return {
            "error_code": 0,
            "partition": asked["partition"],
            "leader_epoch": max(asked["leader_epoch"], -1),
            "end_offset": plog.high_watermark,
        }

    def failed(partition: int, error: int) -> dict[str, Any]:
        return {"error_code": error, "partition": partition, "leader_epoch": -1, "end_offset": -1}

    topics = await _per_partition(ctx, request["topics"], "topic", "partition", answer, failed)
    return {"throttle_time_ms": 0, "topics": topics}


# ---------------------------------------------------------------------------- DeleteRecords
async def handle_delete_records(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    timeout_s = request["timeout_ms"] if request["timeout_ms"] > 0 else DEFAULT_DELETE_TIMEOUT_MS
    timeout_s /= 1000

    async def answer(topic: Topic, asked: dict[str, Any]) -> dict[str, Any]:
        plog = await partition_log(ctx, topic, asked["partition_index"], write=True)
        offset = asked["offset"]
        if offset == -1:
            offset = plog.high_watermark
        low = await plog.delete_records(offset, timeout_s)
        return {"partition_index": asked["partition_index"], "low_watermark": low, "error_code": 0}

    def failed(partition: int, error: int) -> dict[str, Any]:
        return {"partition_index": partition, "low_watermark": -1, "error_code": error}

    topics = await _per_partition(ctx, request["topics"], "name", "partition_index", answer, failed)
    return {"throttle_time_ms": 0, "topics": topics}


HANDLERS = {
    apis.LIST_OFFSETS: handle_list_offsets,
    apis.OFFSET_FOR_LEADER_EPOCH: handle_offset_for_leader_epoch,
    apis.DELETE_RECORDS: handle_delete_records,
}
