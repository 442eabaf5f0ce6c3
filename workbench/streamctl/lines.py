"""Input lines to Arrow key/value columns, a chunk of bytes at a time.

A large file must not cost a Python object per line: each chunk is split on newlines and on
the key separator by Arrow kernels, and the producer takes the columns as they are. Only the
newline is removed; a carriage return or trailing blanks are part of the value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Records:
    values: pa.Array
    keys: pa.Array | None

    def __len__(self) -> int:
        return len(self.values)


def read_chunks(source: BinaryIO, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Blocks of whole lines, each without its final newline; the last line needs none."""
    pending = b""
    while True:
        block = source.read(chunk_bytes)
        if not block:
            break
        pending += block
        cut = pending.rfind(b"\n")
        if cut < 0:
            continue  # a line longer than a chunk: keep reading until it ends
        yield pending[:cut]
        pending = pending[cut + 1 :]
    if pending:
        yield pending


def split_lines(block: bytes) -> pa.Array:
    """The lines of a block produced by ``read_chunks`` (at least one, maybe empty)."""
    return pc.split_pattern(pa.array([block], pa.large_binary()), pattern="\n").flatten()


def split_keys(lines: pa.Array, separator: str | None) -> Records:
    """Key and value of every line, split at the first ``separator``.

    A line without the separator is a record with a null key and the whole line as value.
    """
    if separator is None:
        return Records(lines, None)
    parts = pc.split_pattern(lines, pattern=separator, max_splits=1)
    pieces = parts.flatten()
    offsets = parts.offsets.to_numpy()
    keyed = np.diff(offsets) == 2
    keys = pieces.take(pa.array(offsets[:-1]))
    keys = pc.if_else(pa.array(keyed), keys, pa.scalar(None, keys.type))
    values = pieces.take(pa.array(offsets[1:] - 1))
    return Records(values, keys)


def count_records(blocks: Iterator[bytes]) -> int:
    """How many records the remaining blocks hold, without splitting them."""
    return sum(block.count(b"\n") + 1 for block in blocks)
