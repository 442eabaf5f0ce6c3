"""Errors the partition log API raises to its callers (gRPC and Kafka map them to codes)."""

from __future__ import annotations


class LogError(Exception):
    """Base of partition-log errors."""


class OffsetOutOfRangeError(LogError):
    """A read asked for an offset below the log start or beyond the high watermark."""

    def __init__(self, topic: str, partition: int, offset: int, start: int, end: int) -> None:
        super().__init__(
            f"offset {offset} is out of range for {topic}[{partition}]: "
            f"valid offsets are {start} to {end} (end exclusive)"
        )
        self.offset = offset
        self.log_start_offset = start
        self.high_watermark = end


class NotLeaderError(LogError):
    """This agent does not (or no longer) hold the partition's lease."""

    def __init__(self, topic: str, partition: int, reason: str = "") -> None:
        detail = f": {reason}" if reason else ""
        super().__init__(f"this agent does not lead {topic}[{partition}]{detail}")
        self.topic = topic
        self.partition = partition
