"""Errors raised for malformed record batches.

Every failure is a subclass of :class:`RecordBatchError`, itself a ``ValueError``, so a
protocol handler can map "this client sent bad bytes" to one Kafka error code
(CORRUPT_MESSAGE / INVALID_RECORD / MESSAGE_TOO_LARGE) with a single ``except`` and never
mistake a bug in our own code for bad input. Messages say what is wrong and at which byte.
"""

from __future__ import annotations


class RecordBatchError(ValueError):
    """Base class: the bytes are not a valid Kafka RecordBatch v2."""


class CorruptBatchError(RecordBatchError):
    """The CRC32C does not match, or a compressed payload does not decompress."""


class UnsupportedMagicError(RecordBatchError):
    """The magic byte is not 2 (legacy message sets v0/v1 are not accepted)."""


class BatchLengthError(RecordBatchError):
    """The declared ``batchLength`` disagrees with the bytes that hold the batch."""


class TruncatedBatchError(BatchLengthError):
    """The bytes end before the batch does (a special case of a length disagreement)."""


class RecordCountError(RecordBatchError):
    """The header's record count or last offset delta disagrees with the records found.

    Also raised when the records overrun or underrun the records section.
    """


class InvalidRecordError(RecordBatchError):
    """A record inside the batch is malformed (bad varint, bad length, bad header key)."""


class BatchTooLargeError(RecordBatchError):
    """The batch is bigger than the configured limit (Kafka's MESSAGE_TOO_LARGE)."""


class UnsupportedCompressionError(RecordBatchError):
    """The attributes name a compression codec we do not know (ids 5-7)."""
