"""Errors of the metadata stores.

Every error is a :class:`MetadataError`, so a caller can catch the family, and each names the
object it is about (topic, partition, holder, epoch) because the protocol layer forwards the
message to the client as is. Lookup failures are also ``LookupError`` and bad arguments also
``ValueError`` so generic code catching the builtins still behaves.
"""

from __future__ import annotations


class MetadataError(Exception):
    """Base of every error raised by a metadata store."""


class TopicExistsError(MetadataError):
    """``create_topic`` for a name that is already taken."""


class UnknownTopicError(MetadataError, LookupError):
    """The named topic does not exist (never created, or deleted)."""


class UnknownPartitionError(MetadataError, LookupError):
    """The topic exists but has no partition with that number."""


class UnknownAgentError(MetadataError, LookupError):
    """A heartbeat for an agent that is not registered (removed as dead): re-register."""


class UnknownProducerError(MetadataError, LookupError):
    """A producer id that this store never allocated."""


class InvalidRequestError(MetadataError, ValueError):
    """An argument is out of range or malformed; nothing was written."""


class InvalidTopicError(InvalidRequestError):
    """A topic name Kafka would not accept (empty, too long, illegal characters)."""


class InvalidPartitionsError(InvalidRequestError):
    """A partition count that is not positive, too large, or does not grow the topic."""


class InvalidConfigError(MetadataError, ValueError):
    """A topic config key that is unknown or a value of the wrong type or range."""


class FencedError(MetadataError):
    """The writer's lease epoch is stale or it is not the holder: it must stop writing."""


class LeaseHeldError(MetadataError):
    """Another holder's lease on the partition has not expired yet."""


class SegmentConflictError(MetadataError):
    """A segment commit that would leave a gap or overlap in the partition's offsets."""


class ProducerFencedError(MetadataError):
    """A producer epoch older than the newest one initialised for that producer id."""


class SourceExistsError(MetadataError):
    """``create_source`` for a name (ignoring case) already declared, as a stream or a table."""


class UnknownSourceError(MetadataError, LookupError):
    """No stream or table is declared under that name."""
