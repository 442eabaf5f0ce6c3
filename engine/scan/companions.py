"""Reading columnar companions by range, with their footers kept in memory between scans.

A companion's footer carries everything the planner prunes by (true min/max timestamps and
offsets per row group, key filters), so once a footer is in memory a scan decides which
segments and row groups to read without touching the object store at all. The first scan of a
segment fetches its footer with one ranged read of the file's tail; later reads fetch only the
column chunks of the wanted row groups, concurrently, through the agent's segment cache.

Footers live in one :class:`CompanionFooters` per segment cache (so per agent), an LRU bounded in
bytes. A companion found absent is remembered for ``absent_ttl_s``, so scans of segments without
one (not written yet, dropped during a bulk load) do not ask the store again on every query; the
background backfill writes it meanwhile and the next scan after the TTL finds it.

Why the footer and not a metadata table: a key filter is ~1.25 bytes per distinct key, far too
big to read from the metadata store on every query, and the footer is needed anyway to read the
row groups by range; the cost of keeping summaries only in the companion is one ranged GET per
segment on the first scan after a restart.
"""

from __future__ import annotations

import asyncio
import collections
import time
import weakref
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from streamhouse.broker.log.companion import (
    CompanionFooter,
    IncompleteTail,
    companion_key,
    footer_length,
    parse_footer,
    read_row_groups,
)
from streamhouse.broker.records import ARROW_SCHEMA
from streamhouse.broker.storage import ObjectNotFoundError, SegmentCache

#: The tail fetched first; a footer with large key filters may need a second read.
FOOTER_GUESS_BYTES = 512 * 1024
DEFAULT_FOOTER_CACHE_BYTES = 128 * 1024 * 1024  # ~2 bytes per key: 60 million keys
DEFAULT_ABSENT_TTL_S = 10.0
SCAN_COLUMNS = tuple(ARROW_SCHEMA.names)


class CompanionFooters:
    """The footers of one agent's companions, by segment object key."""

    def __init__(
        self,
        cache: SegmentCache,
        *,
        max_bytes: int = DEFAULT_FOOTER_CACHE_BYTES,
        absent_ttl_s: float = DEFAULT_ABSENT_TTL_S,
    ) -> None:
        self._cache = cache
        self.max_bytes = max_bytes
        self.absent_ttl_s = absent_ttl_s
        self._footers: collections.OrderedDict[str, CompanionFooter] = collections.OrderedDict()
        self._bytes = 0
        self._absent: dict[str, float] = {}  # segment key -> monotonic time it was found absent
        self._sizes: dict[str, int] = {}  # segment key -> its companion's size in bytes
        self.fetches = 0  # footers read from the cache/store (for tests and benchmarks)

    def cached(self, segment_key: str) -> CompanionFooter | None:
        """The footer if it is in memory; never fetches."""
        footer = self._footers.get(segment_key)
        if footer is not None:
            self._footers.move_to_end(segment_key)
        return footer

    def known_absent(self, segment_key: str) -> bool:
        seen = self._absent.get(segment_key)
        if seen is None:
            return False
        if time.monotonic() - seen < self.absent_ttl_s:
            return True
        del self._absent[segment_key]
        return False

    async def get(self, segment_key: str) -> CompanionFooter | None:
        """The footer of the segment's companion; None when it has none (or an unreadable one).

        Raises:
            Exception: the store failed (the caller reads the segment instead).
        """
        footer = self.cached(segment_key)
        if footer is not None or self.known_absent(segment_key):
            return footer
        key = companion_key(segment_key)
        self.fetches += 1
        try:
            size = await self._cache.store.size(key)
            tail = await self._cache.get_range(
                key, max(0, size - FOOTER_GUESS_BYTES), size, size=size
            )
            needed = footer_length(tail) + 8
            if needed > len(tail):
                if needed > size:
                    raise ValueError(f"footer of {needed} bytes in a {size}-byte file")
                tail = await self._cache.get_range(key, size - needed, size, size=size)
            try:
                footer = parse_footer(tail)
            except IncompleteTail as short:  # large key filters: fetch back to their start
                if short.needed > size:
                    raise ValueError("key filters reach before the file's start") from short
                tail = await self._cache.get_range(key, size - short.needed, size, size=size)
                footer = parse_footer(tail)
        except ObjectNotFoundError:
            self._note_absent(segment_key)
            return None
        except ValueError:
            self._cache.invalidate(key)  # a torn cached copy must not stay
            self._note_absent(segment_key)
            raise
        self._remember(segment_key, footer, size)
        return footer

    def clear(self) -> None:
        """Forgets every footer and absence (as a restarted agent would have)."""
        self._footers.clear()
        self._sizes.clear()
        self._absent.clear()
        self._bytes = 0

    def forget(self, segment_key: str) -> None:
        """Drops what is known of a companion (it proved unreadable, or was rewritten)."""
        footer = self._footers.pop(segment_key, None)
        if footer is not None:
            self._bytes -= footer.nbytes
        self._absent.pop(segment_key, None)
        self._cache.invalidate(companion_key(segment_key))

    def size_of(self, segment_key: str) -> int | None:
        return self._sizes.get(segment_key)

    def _remember(self, segment_key: str, footer: CompanionFooter, size: int) -> None:
        self._absent.pop(segment_key, None)
        self._footers[segment_key] = footer
        self._sizes[segment_key] = size
        self._bytes += footer.nbytes
        while self._bytes > self.max_bytes and len(self._footers) > 1:
            old_key, old = self._footers.popitem(last=False)
            self._sizes.pop(old_key, None)
            self._bytes -= old.nbytes

    def _note_absent(self, segment_key: str) -> None:
        if len(self._absent) > 100_000:  # bounded: the oldest entries are expired first anyway
            self._absent.clear()
        self._absent[segment_key] = time.monotonic()


_BY_CACHE: weakref.WeakKeyDictionary[SegmentCache, CompanionFooters] = weakref.WeakKeyDictionary()


def footers_of(cache: SegmentCache) -> CompanionFooters:
    """The footer cache of an agent's segment cache (created on first use)."""
    footers = _BY_CACHE.get(cache)
    if footers is None:
        footers = CompanionFooters(cache)
        _BY_CACHE[cache] = footers
    return footers


async def read_companion_rows(
    cache: SegmentCache,
    segment_key: str,
    footer: CompanionFooter,
    size: int,
    groups: Sequence[int],
    columns: Sequence[str] | None,
    partition: int | None = None,
) -> tuple[pa.RecordBatch, int]:
    """The rows of those row groups (only ``columns``, others null) and the bytes fetched;
    ``partition`` fills the partition column without reading it.

    The column chunks are fetched concurrently on the loop, then decoded in a worker thread.
    """
    key = companion_key(segment_key)
    wanted = list(columns) if columns is not None else SCAN_COLUMNS
    if partition is not None:
        wanted = [c for c in wanted if c != "partition"]
    ranges = footer.byte_ranges(groups, wanted)
    parts = await asyncio.gather(*(cache.get_range(key, lo, hi, size=size) for lo, hi in ranges))

    def decode() -> pa.RecordBatch:
        # A file-sized buffer holding only the fetched ranges: np.zeros maps untouched pages
        # lazily, and pyarrow reads it natively (a Python file object would cost a GIL round
        # trip and a copy per read). Parquet reads only the ranges the footer names.
        image = np.zeros(size, dtype=np.uint8)
        for (lo, _), part in zip(ranges, parts, strict=True):
            image[lo : lo + len(part)] = np.frombuffer(part, dtype=np.uint8)
        source = pa.BufferReader(pa.py_buffer(image))
        return read_row_groups(source, footer, groups, columns, partition)

    batch = await asyncio.to_thread(decode)
    return batch, sum(len(p) for p in parts)
