"""OffsetCommit and OffsetFetch: a group's positions, stored where the gRPC service keeps them.

A commit is checked partition by partition before anything is stored, so one unknown
partition or oversized metadata fails only that partition; the rest are stored together.
Positions that were never committed read back as offset -1, as Kafka answers.
"""

from __future__ import annotations

from typing import Any

from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.context import RequestContext
from streamhouse.broker.kafka.errors import ErrorCode, error_code
from streamhouse.broker.kafka.handlers.groups import coordinator_error
from streamhouse.broker.metadata.validate import MAX_OFFSET_METADATA
from streamhouse.broker.service.broker import is_internal

INT64_MAX = (1 << 63) - 1


# ---------------------------------------------------------------------------- OffsetCommit
async def _partition_counts(ctx: RequestContext, names: set[str]) -> dict[str, int]:
    """Partitions per named topic; unknown and internal topics are left out."""
    counts: dict[str, int] = {}
    for name in names:
        if is_internal(name):
            continue
        try:
            counts[name] = (await ctx.broker.topic(name)).partitions
        except Exception as exc:
            if error_code(exc) != ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                raise
    return counts


def _check(partition: dict[str, Any], partitions: int | None) -> int:
    """The code refusing this one position, or 0."""
    index, offset = partition["partition_index"], partition["committed_offset"]
    metadata = partition["committed_metadata"]
    if partitions is None or not 0 <= index < partitions:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    if metadata is not None and len(metadata) > MAX_OFFSET_METADATA:
        return ErrorCode.OFFSET_METADATA_TOO_LARGE
    if not -1 <= offset <= INT64_MAX:
        return ErrorCode.INVALID_REQUEST
    return ErrorCode.NONE


async def offset_commit(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    group, topics = request["group_id"], request["topics"]
    error = await coordinator_error(ctx, group)
    codes: dict[tuple[str, int], int] = {}
    valid: dict[tuple[str, int], tuple[int, str]] = {}
    if not error:
        try:
            counts = await _partition_counts(ctx, {t["name"] for t in topics})
        except Exception as exc:
            error = error_code(exc)
    if not error:
        for topic in topics:
            for partition in topic["partitions"]:
                key = (topic["name"], partition["partition_index"])
                codes[key] = _check(partition, counts.get(topic["name"]))
                if not codes[key]:
                    metadata = partition["committed_metadata"] or ""
                    valid[key] = (partition["committed_offset"], metadata)
                else:
                    valid.pop(key, None)  # a later bad duplicate refuses the position
        if valid:
            try:
                await ctx.groups.commit(
                    group,
                    request["member_id"],
                    request["generation_id_or_member_epoch"],
                    [(t, p, offset, meta) for (t, p), (offset, meta) in valid.items()],
                )
            except Exception as exc:
                failed = error_code(exc)
                codes.update(dict.fromkeys(valid, failed))
    return {
        "throttle_time_ms": 0,
        "topics": [
            {
                "name": topic["name"],
                "partitions": [
                    {
                        "partition_index": p["partition_index"],
                        "error_code": error or codes[(topic["name"], p["partition_index"])],
                    }
                    for p in topic["partitions"]
                ],
            }
            for topic in topics
        ],
    }


# ---------------------------------------------------------------------------- OffsetFetch
async def _fetch_group(
    ctx: RequestContext, group: str, topics: list[dict[str, Any]] | None
) -> tuple[int, list[dict[str, Any]]]:
    """(group error, topics) for one group; ``topics`` None means everything committed."""
    error = await coordinator_error(ctx, group)
    if not error:
        try:
            committed = await ctx.coordinator.fetch_offsets(group)
        except Exception as exc:
            error = error_code(exc)
    if error:
        # v0/v1 have no group-level code, so it is repeated on every partition asked for.
        return error, [
            {
                "name": t["name"],
                "partitions": [_position(p, -1, "", error) for p in t["partition_indexes"]],
            }
            for t in topics or ()
        ]
    known = {(c.topic, c.partition): (c.offset, c.metadata) for c in committed}
    if topics is None:
        wanted: dict[str, list[int]] = {}
        for topic, partition in known:
            wanted.setdefault(topic, []).append(partition)
        requested = [{"name": t, "partition_indexes": ps} for t, ps in wanted.items()]
    else:
        requested = topics
    out = []
    for topic in requested:
        name = topic["name"]
        partitions = []
        for index in topic["partition_indexes"]:
            offset, metadata = known.get((name, index), (-1, ""))
            partitions.append(_position(index, offset, metadata, 0))
        out.append({"name": name, "partitions": partitions})
    return ErrorCode.NONE, out


def _position(index: int, offset: int, metadata: str, error: int) -> dict[str, Any]:
    return {
        "partition_index": index,
        "committed_offset": offset,
        "committed_leader_epoch": -1,
        "metadata": metadata,
        "error_code": error,
    }


async def offset_fetch(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    if ctx.api_version >= 8:
        groups = []
        for entry in request["groups"]:
            error, topics = await _fetch_group(ctx, entry["group_id"], entry["topics"])
            groups.append({"group_id": entry["group_id"], "topics": topics, "error_code": error})
        return {"throttle_time_ms": 0, "groups": groups}
    error, topics = await _fetch_group(ctx, request["group_id"], request["topics"])
    return {"throttle_time_ms": 0, "topics": topics, "error_code": error}


HANDLERS = {
    apis.OFFSET_COMMIT: offset_commit,
    apis.OFFSET_FETCH: offset_fetch,
}
