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
    """This agent does not (or no longer) hold the partition's lease.

    ``leader_agent`` and ``leader_address`` name the live lease holder when it is known, so
    the protocol layers can send the client straight there; both are empty otherwise.
    """

    def __init__(
        self,
        topic: str,
        partition: int,
        reason: str = "",
        *,
        leader_agent: str = "",
        leader_address: str = "",
    ) -> None:
        detail = f": {reason}" if reason else ""
        where = ""
        if leader_agent:
            where = f"; {leader_agent!r} leads it" + (
                f" at {leader_address}" if leader_address else ""
            )
        super().__init__(f"this agent does not lead {topic}[{partition}]{detail}{where}")
        self.topic = topic
        self.partition = partition
        self.leader_agent = leader_agent
        self.leader_address = leader_address


class ProducerFencedError(LogError):
    """An idempotent producer wrote with an epoch older than one this partition has seen."""

    def __init__(
        self, topic: str, partition: int, producer_id: int, epoch: int, known_epoch: int
    ) -> None:
        super().__init__(
            f"producer {producer_id} at epoch {epoch} is fenced on {topic}[{partition}]: "
            f"epoch {known_epoch} has written there since"
        )
        self.producer_id = producer_id
        self.producer_epoch = epoch
        self.known_epoch = known_epoch


class OutOfOrderSequenceError(LogError):
    """An idempotent producer's batch does not continue its sequence (a gap or a rewind)."""

    def __init__(
        self, topic: str, partition: int, producer_id: int, expected: int, received: int
    ) -> None:
        super().__init__(
            f"producer {producer_id} sent sequence {received} to {topic}[{partition}] "
            f"but sequence {expected} was expected"
        )
        self.producer_id = producer_id
        self.expected_sequence = expected
        self.received_sequence = received
