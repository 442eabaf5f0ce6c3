"""Exceptions raised by segment writers and readers.

Readers fetch objects over the network, so a reader error must say *what* failed (footer,
index, block N) and in *which* object, letting an operator find the bad key without a debugger.
"""

from __future__ import annotations


class SegmentError(Exception):
    """Any misuse of a segment writer or reader, or a segment that cannot be read."""


class InvalidBatchError(SegmentError, ValueError):
    """A batch given to the writer is malformed or does not continue the segment's offsets.

    Also a ``ValueError``, because the fault is in the caller's argument, not in stored data.
    """


class SegmentCorruptError(SegmentError):
    """Stored segment bytes fail a check: a checksum, a magic, a length or a cross-reference.

    Args:
        part: which part failed, e.g. ``"footer"``, ``"index"``, ``"block 3"``.
        detail: what exactly did not match.
        name: the object key (or any label the reader was opened with), if known.
    """

    def __init__(self, part: str, detail: str, *, name: str = "") -> None:
        where = f" in segment {name!r}" if name else ""
        super().__init__(f"corrupt segment {part}{where}: {detail}")
        self.part = part
        self.detail = detail
        self.name = name
