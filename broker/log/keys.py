"""Object-store key layout of segments.

The writer's lease epoch is part of the key, so an upload by a fenced writer can never
overwrite the object its successor commits for the same base offset.
"""

from __future__ import annotations


def partition_prefix(topic_id: int, partition: int) -> str:
    return f"segments/{topic_id}/{partition}/"


def segment_key(topic_id: int, partition: int, base_offset: int, epoch: int) -> str:
    return f"{partition_prefix(topic_id, partition)}{base_offset:020d}-{epoch:010d}.seg"


def parse_segment_key(key: str) -> tuple[int, int] | None:
    """(base offset, epoch) of a segment key, or None for anything else under the prefix."""
    name = key.rsplit("/", 1)[-1]
    if not name.endswith(".seg"):
        return None
    base, _, epoch = name[: -len(".seg")].partition("-")
    if not (base.isdigit() and epoch.isdigit()):
        return None
    return int(base), int(epoch)


def stream_id(topic_id: int, partition: int) -> int:
    """The WAL's identifier of one partition."""
    return (topic_id << 32) | partition


def split_stream_id(value: int) -> tuple[int, int]:
    return value >> 32, value & 0xFFFFFFFF
