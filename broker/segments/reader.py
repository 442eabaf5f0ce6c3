"""Reading a segment object with ranged reads: footer and index once, then only the blocks needed.

``open`` costs three small reads (header and footer in parallel, then the index) and checks all
three, so a reader that exists has a trustworthy index. Each block is checked against its index
entry when fetched; nothing is returned from a block that fails. Runs of adjacent blocks that a
read needs are fetched with one ranged request, and the last couple of decoded blocks are kept so
a consumer reading forward does not fetch the same block twice.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

from streamhouse.broker.segments.blocks import DecodedBlock, checksum, decode_block
from streamhouse.broker.segments.errors import SegmentCorruptError, SegmentError
from streamhouse.broker.segments.format import (
    COMPRESSION_NAMES,
    FOOTER,
    FOOTER_CRC_SPAN,
    FOOTER_MAGIC,
    FORMAT_VERSION,
    HEADER,
    HEADER_MAGIC,
    INDEX_ENTRY,
    Footer,
    IndexEntry,
    SegmentInfo,
)

RangeFetcher = Callable[[int, int], Awaitable[bytes]]
"""``async (start, end) -> bytes`` of the object's range ``[start, end)``."""

CACHED_BLOCKS = 2  # decoded blocks kept per reader: the one being read and the one before
SCAN_FETCH_BYTES = 4 << 20  # stored bytes per request when scanning the whole segment


def parse_footer(data: bytes | memoryview, size: int, name: str) -> Footer:
    """Decodes and checks the footer (the last ``FOOTER.size`` bytes of a ``size``-byte object)."""

    def corrupt(detail: str) -> SegmentCorruptError:
        return SegmentCorruptError("footer", detail, name=name)

    (base, last, records, batches, blocks, min_ts, max_ts, index_pos, index_len, total,
     index_crc, header_crc, footer_crc, magic) = FOOTER.unpack(data)  # fmt: skip
    if magic != FOOTER_MAGIC:
        raise corrupt(f"trailing magic is {magic!r}, expected {FOOTER_MAGIC!r} (truncated?)")
    crc = checksum(memoryview(data)[:FOOTER_CRC_SPAN])
    if crc != footer_crc:
        raise corrupt(f"crc32c is {crc:#010x}, footer says {footer_crc:#010x}")
    if total != size:
        raise corrupt(f"object is {size} bytes but the footer says {total} (truncated?)")
    if index_len != blocks * INDEX_ENTRY.size or index_pos + index_len + FOOTER.size != size:
        raise corrupt(f"index at {index_pos} length {index_len} does not fit {blocks} blocks")
    if blocks < 1 or batches < blocks or base < 0 or last < base or index_pos < HEADER.size:
        raise corrupt(
            f"impossible counts: {blocks} blocks, {batches} batches, offsets {base}..{last}"
        )
    return Footer(
        base, last, records, batches, blocks, min_ts, max_ts, index_pos, index_len, total,
        index_crc, header_crc,
    )  # fmt: skip


def parse_header(data: bytes | memoryview, footer: Footer, name: str) -> int:
    """Checks the header against the footer's crc and fields; returns the compression code."""

    def corrupt(detail: str) -> SegmentCorruptError:
        return SegmentCorruptError("header", detail, name=name)

    crc = checksum(data)
    if crc != footer.header_crc:
        raise corrupt(f"crc32c is {crc:#010x}, footer says {footer.header_crc:#010x}")
    magic, version, compression, flags, base = HEADER.unpack(data)
    if magic != HEADER_MAGIC:
        raise corrupt(f"magic is {magic!r}, expected {HEADER_MAGIC!r}")
    if version != FORMAT_VERSION:
        raise SegmentError(
            f"segment {name!r} has format version {version}; this reader reads {FORMAT_VERSION}"
        )
    if compression not in COMPRESSION_NAMES or flags != 0:
        raise corrupt(f"unknown compression {compression} or flags {flags:#x}")
    if base != footer.base_offset:
        raise corrupt(f"base offset {base} differs from the footer's {footer.base_offset}")
    return compression


def parse_index(data: bytes | memoryview, footer: Footer, name: str) -> list[IndexEntry]:
    """Decodes the index and checks that its blocks tile the body and the offset range."""

    def corrupt(detail: str) -> SegmentCorruptError:
        return SegmentCorruptError("index", detail, name=name)

    crc = checksum(data)
    if crc != footer.index_crc:
        raise corrupt(f"crc32c is {crc:#010x}, footer says {footer.index_crc:#010x}")
    entries = [IndexEntry(*fields) for fields in INDEX_ENTRY.iter_unpack(data)]
    position, next_offset = HEADER.size, footer.base_offset
    for number, e in enumerate(entries):
        if (
            e.position != position
            or e.first_offset != next_offset
            or e.last_offset < e.first_offset
            or e.stored_length == 0
            or e.raw_length == 0
        ):
            raise corrupt(f"entry {number} does not continue the previous block")
        position += e.stored_length
        next_offset = e.last_offset + 1
    if position != footer.index_position or next_offset != footer.last_offset + 1:
        raise corrupt("blocks do not end where the footer says")
    if (
        min(e.min_timestamp for e in entries) != footer.min_timestamp
        or max(e.max_timestamp for e in entries) != footer.max_timestamp
    ):
        raise corrupt("block timestamps do not match the footer")
    return entries


async def _fetch(fetch: RangeFetcher, start: int, end: int, part: str, name: str) -> bytes:
    data = await fetch(start, end)
    if len(data) != end - start:
        raise SegmentCorruptError(
            part, f"read of [{start}, {end}) returned {len(data)} bytes (truncated?)", name=name
        )
    return data


class SegmentReader:
    """Reads batches, timestamps and checks from one segment object.

    Build one with :meth:`open` (ranged reads through a :data:`RangeFetcher`) or
    :meth:`from_bytes` (object already in memory). ``info`` describes the segment.
    """

    def __init__(
        self,
        fetch: RangeFetcher,
        footer: Footer,
        compression: int,
        entries: list[IndexEntry],
        name: str,
    ) -> None:
        self._fetch = fetch
        self._footer = footer
        self._compression = compression
        self._entries = entries
        self._last_offsets = [e.last_offset for e in entries]
        # Running maximum of block max timestamps: monotonic, so bisect finds the first block
        # holding a batch whose max timestamp reaches t even when timestamps go backwards.
        self._running_max_ts = list(itertools.accumulate((e.max_timestamp for e in entries), max))
        self._cache: collections.OrderedDict[int, DecodedBlock] = collections.OrderedDict()
        self.name = name
        self.info = SegmentInfo(
            base_offset=footer.base_offset,
            last_offset=footer.last_offset,
            record_count=footer.record_count,
            batch_count=footer.batch_count,
            min_timestamp=footer.min_timestamp,
            max_timestamp=footer.max_timestamp,
            size_bytes=footer.total_size,
            compression=COMPRESSION_NAMES[compression],
        )

    # ------------------------------------------------------------ construct
    @classmethod
    async def open(cls, fetch: RangeFetcher, size: int, *, name: str = "") -> SegmentReader:
        """Reads and verifies the header, footer and index of a ``size``-byte object.

        Raises:
            SegmentCorruptError: the object is truncated or any of the three parts fails a check.
            SegmentError: a format version this reader does not know.
        """
        _check_size(size, name)
        header, footer_bytes = await asyncio.gather(
            _fetch(fetch, 0, HEADER.size, "header", name),
            _fetch(fetch, size - FOOTER.size, size, "footer", name),
        )
        footer = parse_footer(footer_bytes, size, name)
        compression = parse_header(header, footer, name)
        start = footer.index_position
        index = await _fetch(fetch, start, start + footer.index_length, "index", name)
        return cls(fetch, footer, compression, parse_index(index, footer, name), name)

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str = "") -> SegmentReader:
        """A reader over a whole object held in memory, with the same checks as :meth:`open`."""
        view = memoryview(data)
        size = len(view)
        _check_size(size, name)
        footer = parse_footer(view[size - FOOTER.size :], size, name)
        compression = parse_header(view[: HEADER.size], footer, name)
        index = view[footer.index_position : footer.index_position + footer.index_length]
        entries = parse_index(index, footer, name)

        async def fetch(start: int, end: int) -> memoryview:
            return view[start:end]

        return cls(fetch, footer, compression, entries, name)

    # ---------------------------------------------------------------- blocks
    @property
    def block_count(self) -> int:
        return len(self._entries)

    async def _fetch_run(self, first: int, last: int) -> list[memoryview]:
        """The stored bytes of blocks ``first..last`` (adjacent), fetched with one ranged read."""
        entries = self._entries
        start = entries[first].position
        end = entries[last].position + entries[last].stored_length
        part = f"block {first}" if first == last else f"blocks {first}..{last}"
        data = memoryview(await _fetch(self._fetch, start, end, part, self.name))
        return [
            data[e.position - start : e.position - start + e.stored_length]
            for e in entries[first : last + 1]
        ]

    def _decode(self, number: int, stored: memoryview) -> DecodedBlock:
        entry = self._entries[number]
        return decode_block(stored, entry, self._compression, number=number, name=self.name)

    async def _load(self, first: int, last: int) -> list[DecodedBlock]:
        """Decoded blocks ``first..last``; adjacent uncached blocks come from one ranged read."""
        out: list[DecodedBlock | None] = [self._cache.get(i) for i in range(first, last + 1)]
        i = first
        while i <= last:
            if out[i - first] is not None:
                i += 1
                continue
            j = i
            while j + 1 <= last and out[j + 1 - first] is None:
                j += 1
            for k, stored in enumerate(await self._fetch_run(i, j), start=i):
                out[k - first] = self._decode(k, stored)
            i = j + 1
        # The most recently used blocks stay; a forward reader usually hits the last one next.
        for k, block in enumerate(out, start=first):
            self._cache[k] = block
            self._cache.move_to_end(k)
        while len(self._cache) > CACHED_BLOCKS:
            self._cache.popitem(last=False)
        return out  # type: ignore[return-value]

    async def _scan(self) -> AsyncIterator[DecodedBlock]:
        """Every block in order, fetched in runs of about ``SCAN_FETCH_BYTES`` stored bytes.

        Blocks are decoded one at a time as the caller consumes them, so a scan holds one run of
        stored bytes and one decoded block, not the whole segment, and bypasses the block cache.
        """
        n = len(self._entries)
        i = 0
        while i < n:
            j, budget = i, SCAN_FETCH_BYTES - self._entries[i].stored_length
            while j + 1 < n and budget >= self._entries[j + 1].stored_length:
                j += 1
                budget -= self._entries[j].stored_length
            for k, stored in enumerate(await self._fetch_run(i, j), start=i):
                yield self._decode(k, stored)
            i = j + 1

    # ----------------------------------------------------------------- reads
    async def read(self, offset: int, max_bytes: int) -> list[bytes]:
        """Batches from the one containing ``offset`` onward, up to about ``max_bytes``.

        The first batch may start before ``offset`` (as in a Kafka fetch) and is returned even if
        it alone exceeds ``max_bytes``; after it, a batch is added only while the total stays
        within ``max_bytes``. An offset before the segment reads from its first batch; one past
        its end returns ``[]``.

        Raises:
            SegmentCorruptError: a needed block fails its checks (nothing is returned).
        """
        if offset > self._footer.last_offset:
            return []
        first = bisect.bisect_left(self._last_offsets, offset)
        out: list[bytes] = []
        (block,) = await self._load(first, first)
        full, total = _take(block, block.first_batch_reaching(offset), out, 0, max_bytes)
        if full:
            return out
        remaining = max_bytes - total
        n = len(self._entries)
        if remaining <= 0 or first + 1 >= n:
            return out
        # Later blocks are read from their start, so their raw sizes bound what is needed.
        last = first + 1
        remaining -= self._entries[last].raw_length
        while remaining > 0 and last + 1 < n:
            last += 1
            remaining -= self._entries[last].raw_length
        for block in await self._load(first + 1, last):
            full, total = _take(block, 0, out, total, max_bytes)
            if full:
                break
        return out

    async def batches(self) -> AsyncIterator[bytes]:
        """Every batch of the segment in offset order (each block checked before it is used)."""
        async for block in self._scan():
            for i in range(len(block.starts)):
                yield block.batch(i)

    async def _locate_timestamp(self, ts: int) -> tuple[DecodedBlock, int] | None:
        i = bisect.bisect_left(self._running_max_ts, ts)
        if i == len(self._running_max_ts):
            return None
        (block,) = await self._load(i, i)
        for k, max_ts in enumerate(block.max_timestamps):  # per batch, within one block
            if max_ts >= ts:
                return block, k
        raise SegmentCorruptError(
            f"block {i}", "no batch reaches the block's max timestamp", name=self.name
        )

    async def find_batch_for_timestamp(self, ts: int) -> bytes | None:
        """The first batch (in offset order) whose max timestamp is >= ``ts``; None if none.

        Kafka's ListOffsets wants the earliest *record* with timestamp >= ``ts``, which needs the
        records' own timestamps: the caller decodes this one batch to refine the answer.
        """
        found = await self._locate_timestamp(ts)
        return None if found is None else found[0].batch(found[1])

    async def offset_for_timestamp(self, ts: int) -> int | None:
        """Base offset of :meth:`find_batch_for_timestamp`'s batch (batch-granular answer).

        The exact record may lie later in that batch; refine with the record codec if needed.
        """
        found = await self._locate_timestamp(ts)
        return None if found is None else found[0].base_offsets[found[1]]

    async def verify(self) -> None:
        """Fetches and checks every block, then the footer's batch and record counts.

        Raises:
            SegmentCorruptError: the first part found to be bad.
        """
        batches = records = 0
        async for block in self._scan():
            batches += len(block.starts)
            records += sum(block.record_counts)
        footer = self._footer
        if batches != footer.batch_count or records != footer.record_count:
            raise SegmentCorruptError(
                "footer",
                f"blocks hold {batches} batches / {records} records, footer says "
                f"{footer.batch_count} / {footer.record_count}",
                name=self.name,
            )


def _check_size(size: int, name: str) -> None:
    if size < HEADER.size + FOOTER.size + INDEX_ENTRY.size:
        raise SegmentCorruptError(
            "object", f"{size} bytes is too small to be a segment (truncated?)", name=name
        )


def _take(
    block: DecodedBlock, start: int, out: list[bytes], total: int, max_bytes: int
) -> tuple[bool, int]:
    """Appends batches from ``start`` while they fit; returns (read is full, new total)."""
    for i in range(start, len(block.starts)):
        size = block.ends[i] - block.starts[i]
        if out and total + size > max_bytes:
            return True, total
        out.append(block.batch(i))
        total += size
    return False, total
