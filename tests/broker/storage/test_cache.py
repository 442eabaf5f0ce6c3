"""SegmentCache: hits and misses, LRU eviction, ranged reads, restarts and invalidation.

The backing store is a real LocalObjectStore that counts what is asked of it, so each test can
say exactly which reads reached the store.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

import pytest
from streamhouse.broker.storage import (
    LocalObjectStore,
    ObjectNotFoundError,
    S3ObjectStore,
    SegmentCache,
)


class CountingStore(LocalObjectStore):
    """A LocalObjectStore that records each call; ``gate`` can hold ``get`` calls open."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.calls: Counter[str] = Counter()
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def get(self, key: str) -> bytes:
        self.calls["get"] += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        return await super().get(key)

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        self.calls["get_range"] += 1
        return await super().get_range(key, start, end)

    async def size(self, key: str) -> int:
        self.calls["size"] += 1
        return await super().size(key)


@pytest.fixture
def backing(tmp_path: Path) -> CountingStore:
    return CountingStore(tmp_path / "objects")


def cache_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_miss_fetches_and_caches_then_hits_from_disk(
    backing: CountingStore, tmp_path: Path
) -> None:
    await backing.put("seg/1", b"a" * 100)
    cache = SegmentCache(backing, tmp_path / "cache", max_bytes=1000)
    assert await cache.get("seg/1") == b"a" * 100
    assert await cache.get("seg/1") == b"a" * 100
    assert await cache.get_range("seg/1", 10, 20) == b"a" * 10
    assert backing.calls["get"] == 1
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.bytes, stats.entries) == (2, 1, 100, 1)


async def test_put_writes_through_and_is_then_cached(
    backing: CountingStore, tmp_path: Path
) -> None:
    cache = SegmentCache(backing, tmp_path / "cache", max_bytes=1000)
    await cache.put("seg/new", b"sealed segment")
    assert await backing.get("seg/new") == b"sealed segment"  # in the store
    backing.calls.clear()
    assert await cache.get("seg/new") == b"sealed segment"
    assert backing.calls["get"] == 0
    assert cache.stats.hits == 1 and cache.stats.misses == 0


async def test_failed_store_put_caches_nothing(tmp_path: Path) -> None:
    cache = SegmentCache(LocalObjectStore(tmp_path / "o"), tmp_path / "cache", max_bytes=1000)
    with pytest.raises(ValueError, match="object key"):
        await cache.put("../bad", b"x")
    assert cache.stats.entries == 0
    assert cache_files(tmp_path / "cache") == []


async def test_least_recently_used_objects_are_evicted_first(
    backing: CountingStore, tmp_path: Path
) -> None:
    cache = SegmentCache(backing, tmp_path / "cache", max_bytes=300)
    for key in ("a", "b", "c"):
        await cache.put(key, key.encode() * 100)
    await cache.get("a")  # a is now more recent than b and c
    await cache.put("d", b"d" * 100)  # over the cap: b goes
    assert cache.stats.evictions == 1
    assert cache.stats.bytes == 300
    await cache.get_range("c", 0, 1)  # c is now more recent than a
    await cache.put("e", b"e" * 150)  # needs 150 bytes: a, then d go (c was touched)
    assert cache.stats.evictions == 3
    assert cache.stats.bytes == 250

    backing.calls.clear()
    for key in ("c", "e"):
        await cache.get(key)
    assert backing.calls["get"] == 0
    for key in ("a", "b", "d"):
        await cache.get(key)
    assert backing.calls["get"] == 3
    assert len(cache_files(tmp_path / "cache")) == cache.stats.entries


async def test_object_larger_than_the_cache_is_served_but_not_cached(
    backing: CountingStore, tmp_path: Path
) -> None:
    cache = SegmentCache(backing, tmp_path / "cache", max_bytes=100)
    await cache.put("small", b"s" * 50)
    await backing.put("huge", b"h" * 500)
    assert await cache.get("huge") == b"h" * 500
    assert cache.stats.entries == 1 and cache.stats.evictions == 0  # small one kept
    await cache.get("huge")
    assert backing.calls["get"] == 2


async def test_ranged_miss_on_a_small_object_caches_it_whole(
    backing: CountingStore, tmp_path: Path
) -> None:
    data = os.urandom(4096)
    await backing.put("seg", data)
    cache = SegmentCache(backing, tmp_path / "cache", max_bytes=10_000)
    assert await cache.get_range("seg", 4000, 4096) == data[4000:]  # the footer
    assert await cache.get_range("seg", 0, 100) == data[:100]  # then the rest is local
    assert await cache.get_range("seg", 4090, 5000) == data[4090:]
    assert backing.calls == {"size": 1, "get": 1}
    assert (cache.stats.misses, cache.stats.hits) == (1, 2)


async def test_ranged_miss_on_a_large_object_reads_only_the_range(
    backing: CountingStore, tmp_path: Path
) -> None:
    data = os.urandom(100_000)
    await backing.put("big", data)
    cache = SegmentCache(
        backing, tmp_path / "cache", max_bytes=1_000_000, whole_object_max_bytes=10_000
    )
    assert await cache.get_range("big", 500, 600) == data[500:600]
    assert await cache.get_range("big", 99_990, 100_010) == data[99_990:]
    assert backing.calls == {"size": 1, "get_range": 2}  # the size is remembered
    assert cache.stats.entries == 0


async def test_size_hint_saves_the_head_request(backing: CountingStore, tmp_path: Path) -> None:
    await backing.put("seg", b"x" * 1000)
    cache = SegmentCache(backing, tmp_path / "cache", max_bytes=10_000)
    assert await cache.get_range("seg", 0, 10, size=1000) == b"x" * 10
    assert backing.calls["size"] == 0


async def test_ranged_read_through_s3_does_not_download_a_large_object(
    s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    store = S3ObjectStore(s3_bucket, endpoint_url=s3_endpoint)
    try:
        data = os.urandom(300_000)
        await store.put("big", data)
        cache = SegmentCache(store, tmp_path / "cache", 10_000_000, whole_object_max_bytes=100_000)
        assert await cache.get_range("big", 1000, 2000, size=len(data)) == data[1000:2000]
        assert store.stats.bytes_in == 1000
    finally:
        await store.close()


async def test_cache_survives_being_recreated(backing: CountingStore, tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    first = SegmentCache(backing, directory, max_bytes=1000)
    for key in ("a", "b", "c"):
        await first.put(key, key.encode() * 100)
    # Give the files distinct ages: b used longest ago, then c, then a.
    names = {key: first._name(key) for key in ("a", "b", "c")}
    for key, age in (("b", 300), ("c", 200), ("a", 100)):
        stamp = 1_700_000_000 - age
        os.utime(directory / names[key], (stamp, stamp))

    second = SegmentCache(backing, directory, max_bytes=1000)
    assert (second.stats.entries, second.stats.bytes) == (3, 300)
    backing.calls.clear()
    assert await second.get("b") == b"b" * 100
    assert backing.calls["get"] == 0
    assert (directory / names["b"]).stat().st_mtime > 1_700_000_000  # the hit bumped it

    # A smaller cap on restart evicts in recency order: c (oldest now), then a.
    third = SegmentCache(backing, directory, max_bytes=150)
    assert third.stats.evictions == 2
    assert cache_files(directory) == [names["b"]]


async def test_restart_removes_torn_temp_files_and_keeps_foreign_files(
    backing: CountingStore, tmp_path: Path
) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / ("0" * 64 + ".obj.1a2b3c.tmp")).write_bytes(b"torn")
    (directory / "README").write_text("not ours")
    cache = SegmentCache(backing, directory, max_bytes=1000)
    assert cache_files(directory) == ["README"]
    assert cache.stats.entries == 0


async def test_invalidate_drops_the_file_and_the_next_read_goes_to_the_store(
    backing: CountingStore, tmp_path: Path
) -> None:
    cache = SegmentCache(backing, tmp_path / "cache", max_bytes=1000)
    await cache.put("seg", b"x" * 100)
    await cache.put("other", b"y" * 10)
    await backing.delete("seg")  # retention
    cache.invalidate("seg")
    cache.invalidate("never-cached")
    assert (cache.stats.entries, cache.stats.bytes) == (1, 10)
    with pytest.raises(ObjectNotFoundError):
        await cache.get("seg")
    with pytest.raises(ObjectNotFoundError):
        await cache.get_range("seg", 0, 10)
    assert len(cache_files(tmp_path / "cache")) == 1


async def test_invalidate_during_a_fill_keeps_it_out_of_the_cache(
    backing: CountingStore, tmp_path: Path
) -> None:
    await backing.put("seg", b"old bytes")
    cache = SegmentCache(backing, tmp_path / "cache", max_bytes=1000)
    backing.gate = asyncio.Event()
    reader = asyncio.create_task(cache.get("seg"))
    await backing.entered.wait()
    cache.invalidate("seg")  # deleted while the read was in flight
    backing.gate.set()
    assert await reader == b"old bytes"
    assert cache.stats.entries == 0
    assert cache_files(tmp_path / "cache") == []


async def test_concurrent_misses_share_one_fetch(backing: CountingStore, tmp_path: Path) -> None:
    await backing.put("seg", b"z" * 500)
    cache = SegmentCache(backing, tmp_path / "cache", max_bytes=1000)
    backing.gate = asyncio.Event()
    readers = [asyncio.create_task(cache.get("seg")) for _ in range(5)]
    await backing.entered.wait()
    backing.gate.set()
    assert await asyncio.gather(*readers) == [b"z" * 500] * 5
    assert backing.calls["get"] == 1
    assert cache.stats.misses == 5


async def test_a_cancelled_reader_does_not_cancel_the_shared_fetch(
    backing: CountingStore, tmp_path: Path
) -> None:
    await backing.put("seg", b"q" * 10)
    cache = SegmentCache(backing, tmp_path / "cache", max_bytes=1000)
    backing.gate = asyncio.Event()
    first = asyncio.create_task(cache.get("seg"))
    await backing.entered.wait()
    second = asyncio.create_task(cache.get("seg"))
    await asyncio.sleep(0)
    first.cancel()
    backing.gate.set()
    assert await second == b"q" * 10
    assert first.cancelled()
    assert cache.stats.entries == 1


async def test_cache_file_removed_behind_its_back_is_a_miss(
    backing: CountingStore, tmp_path: Path
) -> None:
    cache = SegmentCache(backing, tmp_path / "cache", max_bytes=1000)
    await cache.put("seg", b"data")
    for name in cache_files(tmp_path / "cache"):
        os.unlink(tmp_path / "cache" / name)
    assert await cache.get("seg") == b"data"
    assert backing.calls["get"] == 1
    assert cache.stats.bytes == 4


def test_negative_capacity_is_rejected(backing: CountingStore, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        SegmentCache(backing, tmp_path / "cache", max_bytes=-1)
