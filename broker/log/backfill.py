"""Companions for committed segments that lack one, written in the background.

A segment can be committed without its columnar companion: it predates companions, the agent
stopped before writing it, or a bulk load outran the companion writer, which drops what queues
past ``MAX_PENDING`` rather than hold every sealed segment in memory. Scans still read such a
segment (by decoding it), only slower. This task closes the gap for the partitions the agent
leads: it finds committed segments whose companion is absent (one LIST per partition, only
when the partition has segments not yet seen with a companion), reads each segment back
through the segment cache and writes its companion through the same low-priority encoder the
writer uses.

It is rate-limited twice: a partition whose writer is busy is left alone (ingest first), and
after each companion the task pauses at least as long as the companion took, so it uses at
most half of one core even when a whole topic needs companions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from streamhouse.broker.metadata import SegmentRecord
from streamhouse.broker.segments import SegmentReader
from streamhouse.broker.storage import ObjectNotFoundError, ObjectStore, SegmentCache

from .companion import SUFFIX, write_companion
from .keys import partition_prefix
from .partition import PartitionLog

log = logging.getLogger("streamhouse.log")

DEFAULT_INTERVAL_S = 5.0


class CompanionBackfill:
    """Writes the missing companions of the led partitions, a few at a time.

    Args:
        partitions: the partition logs this agent leads now (called on every pass).
        store: where segments and companions live.
        cache: the segment cache segments are read back through.
        interval_s: the pause between passes.
    """

    def __init__(
        self,
        partitions: Callable[[], Iterable[PartitionLog]],
        store: ObjectStore,
        cache: SegmentCache,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self._partitions = partitions
        self._store = store
        self._cache = cache
        self.interval_s = interval_s
        self.enabled = True  # False: passes are skipped (run_once still works)
        self._settled: set[str] = set()  # segment keys with a companion (or beyond help)
        self.written = 0

    async def run(self) -> None:
        """Passes forever, ``interval_s`` apart; a failing pass is logged and retried."""
        while True:
            await asyncio.sleep(self.interval_s)
            if not self.enabled:
                continue
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("companion backfill pass failed")

    async def run_once(self, *, pause: bool = True) -> int:
        """One pass over the led partitions; returns how many companions it wrote."""
        written = 0
        live: set[str] = set()
        for plog in list(self._partitions()):
            segments = plog.segments
            live.update(s.object_key for s in segments)
            if plog.fenced or plog.companions.busy:
                continue
            unseen = [s for s in segments if s.object_key not in self._settled]
            if not unseen:
                continue
            for record in await self._missing(plog, unseen):
                started = time.monotonic()
                if await self._backfill(plog, record):
                    written += 1
                if pause:  # at most half of one core, whatever the backlog
                    await asyncio.sleep(time.monotonic() - started)
                if plog.companions.busy:  # new segments arrived: their writer goes first
                    break
        self._settled &= live
        self.written += written
        return written

    async def _missing(
        self, plog: PartitionLog, unseen: list[SegmentRecord]
    ) -> list[SegmentRecord]:
        prefix = partition_prefix(plog.topic.topic_id, plog.partition)
        present = {info.key for info in await self._store.list(prefix) if info.key.endswith(SUFFIX)}
        missing = []
        for record in unseen:
            if record.object_key + SUFFIX in present:
                self._settled.add(record.object_key)
            else:
                missing.append(record)
        return missing

    async def _backfill(self, plog: PartitionLog, record: SegmentRecord) -> bool:
        try:
            data = await self._cache.get(record.object_key)
            batches = await asyncio.to_thread(_batches_of, data, record.object_key)
        except ObjectNotFoundError:
            return False  # deleted by retention meanwhile
        except Exception:  # a corrupt segment: its readers report it; never retried here
            log.warning("companion of %s not backfilled", record.object_key, exc_info=True)
            self._settled.add(record.object_key)
            return False

        def is_live(rec: SegmentRecord) -> bool:
            return rec.last_offset >= plog.log_start_offset and not plog.fenced

        if not await write_companion(self._store, record, batches, is_live):
            return False
        self._settled.add(record.object_key)
        log.debug("companion of %s backfilled", record.object_key)
        return True


def _batches_of(data: bytes, name: str) -> list[bytes]:
    """Every batch of a segment held in memory (decompressed off the event loop)."""

    async def collect() -> list[bytes]:
        reader = SegmentReader.from_bytes(data, name=name)
        return [batch async for batch in reader.batches()]

    return asyncio.run(collect())
