"""An on-disk LRU cache of immutable objects, in front of an object store.

Sealed segments never change, so a copy on local disk is always valid until the object is
deleted (retention calls :meth:`SegmentCache.invalidate`). Consumers reading the recent past hit
the segments that were just sealed, which is why :meth:`SegmentCache.put` writes through: the
agent that uploads a segment keeps a copy and serves those reads without a round trip to S3.

Files live flat in one directory, named by a hash of the key (keys can be long and contain
``/``). Each is written to a temporary name, fsynced and renamed, so after a crash a cached file
is complete or absent, never torn; the index is rebuilt from the directory on start, ordered by
modification time, which reads bump - so recency survives restarts too. The cache is best
effort: a failing disk costs hits, never a read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from streamhouse.broker.storage.base import ObjectStore, validate_range

log = logging.getLogger(__name__)

_ENTRY = re.compile(r"^[0-9a-f]{64}\.obj$")
_TEMP_SUFFIX = ".tmp"
#: Object sizes remembered for ranged reads (a HEAD saved per first touch of a large object).
_SIZE_HINTS = 65_536


@dataclass(frozen=True)
class CacheStats:
    """Counters of a :class:`SegmentCache`.

    Attributes:
        hits: reads served from a cached file.
        misses: reads that had to go to the store.
        evictions: files removed to stay under ``max_bytes``.
        bytes: bytes currently cached.
        entries: files currently cached.
    """

    hits: int
    misses: int
    evictions: int
    bytes: int
    entries: int


class SegmentCache:
    """A size-capped, least-recently-used cache of whole objects on local disk.

    Args:
        store: where misses are read from and puts are written to.
        directory: the cache's own directory (created if missing; other files are left alone).
        max_bytes: the cap on cached bytes; objects larger than this are never cached.
        whole_object_max_bytes: a ranged read that misses fetches and caches the whole object
            only when it is at most this big; larger objects are read by range from the store.
    """

    def __init__(
        self,
        store: ObjectStore,
        directory: Path,
        max_bytes: int,
        *,
        whole_object_max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if max_bytes < 0:
            raise ValueError(f"cache max_bytes must be >= 0, got {max_bytes}")
        self.store = store
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.whole_object_max_bytes = whole_object_max_bytes
        self._index: OrderedDict[str, int] = OrderedDict()  # file name -> size, oldest first
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._epoch = 0  # bumped by invalidate: fills that started earlier are not cached
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[bytes]] = {}
        self.directory.mkdir(parents=True, exist_ok=True)
        self._rebuild()

    # ------------------------------------------------------------------ index
    def _rebuild(self) -> None:
        """Re-reads the directory: removes torn temp files, orders entries by last use."""
        entries: list[tuple[float, str, int]] = []
        for entry in os.scandir(self.directory):
            if entry.name.endswith(_TEMP_SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            elif _ENTRY.match(entry.name) and entry.is_file(follow_symlinks=False):
                st = entry.stat()
                entries.append((st.st_mtime, entry.name, st.st_size))
        entries.sort()
        for _mtime, name, size in entries:
            self._index[name] = size
            self._bytes += size
        self._evict()

    @staticmethod
    def _name(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest() + ".obj"

    def _path(self, name: str) -> Path:
        return self.directory / name

    def _drop(self, name: str) -> None:
        size = self._index.pop(name, None)
        if size is not None:
            self._bytes -= size
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(name))

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._index:
            name = next(iter(self._index))
            self._drop(name)
            self._evictions += 1

    def _remember_size(self, key: str, size: int) -> None:
        self._sizes[key] = size
        self._sizes.move_to_end(key)
        if len(self._sizes) > _SIZE_HINTS:
            self._sizes.popitem(last=False)

    @property
    def stats(self) -> CacheStats:
        """Hit, miss and eviction counts and the current size."""
        return CacheStats(self._hits, self._misses, self._evictions, self._bytes, len(self._index))

    # ------------------------------------------------------------------ file I/O
    async def _read_cached(self, key: str, start: int | None, end: int | None) -> bytes | None:
        """Reads a cached file (whole or a range), or returns None when it is not cached."""
        name = self._name(key)
        if name not in self._index:
            return None
        path = self._path(name)

        def read() -> bytes:
            with open(path, "rb") as f:
                if start is None or end is None:
                    data = f.read()
                else:
                    f.seek(start)
                    data = f.read(end - start)
            os.utime(path)  # recency for the rebuild after a restart
            return data

        try:
            data = await asyncio.to_thread(read)
        except FileNotFoundError:  # evicted or invalidated meanwhile
            if name in self._index and not self._path(name).exists():
                self._drop(name)
            return None
        except OSError as exc:
            log.warning("segment cache: reading %s for %r failed: %s", path, key, exc)
            self._drop(name)
            return None
        if name in self._index:
            self._index.move_to_end(name)
        self._hits += 1
        return data

    async def _insert(self, key: str, data: bytes, epoch: int) -> None:
        """Caches ``data`` for ``key`` unless it is too big or ``key`` was invalidated since."""
        if len(data) > self.max_bytes:
            return
        name = self._name(key)
        path = self._path(name)

        def write() -> None:
            tmp = self.directory / f"{name}.{secrets.token_hex(6)}{_TEMP_SUFFIX}"
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            log.warning("segment cache: caching %r failed: %s", key, exc)
            return
        if epoch != self._epoch:  # invalidated while we wrote: the copy may be of a dead object
            self._drop(name)
            return
        old = self._index.pop(name, None)
        if old is not None:
            self._bytes -= old
        self._index[name] = len(data)
        self._bytes += len(data)
        self._evict()

    async def _fetch_whole(self, key: str) -> bytes:
        """Gets the object from the store and caches it; concurrent misses share one fetch."""
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fill(key, self._epoch))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._fill_done(key, t))
        return await asyncio.shield(task)

    def _fill_done(self, key: str, task: asyncio.Task[bytes]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not logged as lost

    async def _fill(self, key: str, epoch: int) -> bytes:
        data = await self.store.get(key)
        self._remember_size(key, len(data))
        await self._insert(key, data, epoch)
        return data

    # ------------------------------------------------------------------ API
    async def get(self, key: str) -> bytes:
        """Returns the whole object, from disk when cached, else from the store (then cached)."""
        data = await self._read_cached(key, None, None)
        if data is not None:
            return data
        self._misses += 1
        return await self._fetch_whole(key)

    async def get_range(self, key: str, start: int, end: int, *, size: int | None = None) -> bytes:
        """Returns bytes ``[start, end)`` of the object, clamped to its size.

        A cached object is read from its file. Otherwise a small object (at most
        ``whole_object_max_bytes``) is fetched whole and cached, since its other ranges are
        likely next (a segment reader reads the footer, then the index, then batches); a larger
        one is read by range from the store, without caching.

        Args:
            size: the object's size if the caller knows it (segment metadata does); saves a
                HEAD request on the first miss.
        """
        validate_range(start, end)
        data = await self._read_cached(key, start, end)
        if data is not None:
            return data
        self._misses += 1
        total = size if size is not None else self._sizes.get(key)
        if total is None:
            total = await self.store.size(key)
            self._remember_size(key, total)
        if total <= min(self.whole_object_max_bytes, self.max_bytes):
            return (await self._fetch_whole(key))[start:end]
        return await self.store.get_range(key, start, end)

    async def put(self, key: str, data: bytes) -> None:
        """Writes ``data`` to the store, then caches it (a just-sealed segment is read next)."""
        epoch = self._epoch
        await self.store.put(key, data)
        self._remember_size(key, len(data))
        await self._insert(key, bytes(data), epoch)

    def invalidate(self, key: str) -> None:
        """Forgets ``key``: removes its file, and stops any fill in flight from caching it."""
        self._epoch += 1
        self._sizes.pop(key, None)
        self._drop(self._name(key))
