"""One contract, both backends: what the log may rely on from any ObjectStore.

Every test runs against LocalObjectStore and against S3ObjectStore talking HTTP to moto's
server (with a listing page size of 7, so any listing of more keys crosses pages).
"""

from __future__ import annotations

import os

import pytest
from streamhouse.broker.storage import (
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStore,
    S3ObjectStore,
)

PAYLOAD = bytes(range(256)) * 4  # every byte value, 1024 bytes


async def test_put_then_get_returns_the_same_bytes(store: ObjectStore) -> None:
    await store.put("topics/t1/0/00000000000000000000.seg", PAYLOAD)
    assert await store.get("topics/t1/0/00000000000000000000.seg") == PAYLOAD
    assert await store.size("topics/t1/0/00000000000000000000.seg") == len(PAYLOAD)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 1024, PAYLOAD),
        (0, 1, PAYLOAD[:1]),
        (1023, 1024, PAYLOAD[1023:]),
        (100, 356, PAYLOAD[100:356]),
        (0, 0, b""),
        (512, 512, b""),
        (1000, 5000, PAYLOAD[1000:]),  # past the end: clamped like a slice
        (1024, 1030, b""),  # starting exactly at the end
        (4000, 5000, b""),  # starting beyond the end
    ],
    ids=lambda value: None if isinstance(value, int) else f"{len(value)}B",
)
async def test_get_range_returns_the_half_open_range_clamped_to_the_size(
    store: ObjectStore, start: int, end: int, expected: bytes
) -> None:
    await store.put("obj", PAYLOAD)
    assert await store.get_range("obj", start, end) == expected


@pytest.mark.parametrize(("start", "end"), [(-1, 10), (10, 9)])
async def test_get_range_rejects_backwards_or_negative_ranges(
    store: ObjectStore, start: int, end: int
) -> None:
    await store.put("obj", PAYLOAD)
    with pytest.raises(ValueError, match="invalid byte range"):
        await store.get_range("obj", start, end)


async def test_missing_keys_raise_not_found_naming_the_key(store: ObjectStore) -> None:
    await store.put("present", b"x")
    for call in (
        store.get("a/missing"),
        store.get_range("a/missing", 0, 10),
        store.get_range("a/missing", 3, 3),
        store.size("a/missing"),
    ):
        with pytest.raises(ObjectNotFoundError, match="a/missing") as info:
            await call
        assert info.value.key == "a/missing"


async def test_list_filters_by_prefix_and_sorts_by_key(store: ObjectStore) -> None:
    keys = ["t/b/2", "t/a/1", "t/ab", "t/a/0", "u/x", "t/a1/z", "top"]
    for i, key in enumerate(keys):
        await store.put(key, b"v" * i)
    sizes = {key: i for i, key in enumerate(keys)}

    assert await store.list() == [ObjectInfo(k, sizes[k]) for k in sorted(keys)]
    assert [i.key for i in await store.list("t/")] == ["t/a/0", "t/a/1", "t/a1/z", "t/ab", "t/b/2"]
    # a prefix is a string prefix, not a directory: "t/a" also matches "t/a1/..." and "t/ab"
    assert [i.key for i in await store.list("t/a")] == ["t/a/0", "t/a/1", "t/a1/z", "t/ab"]
    assert [i.key for i in await store.list("t/a/")] == ["t/a/0", "t/a/1"]
    assert [i.key for i in await store.list("to")] == ["top"]
    assert await store.list("nothing/") == []


async def test_list_follows_every_page(store: ObjectStore) -> None:
    keys = [f"seg/{i:05d}" for i in range(23)]  # 4 pages of 7 on S3
    for key in reversed(keys):
        await store.put(key, b"x")
    await store.put("other/1", b"y")
    listed = await store.list("seg/")
    assert [i.key for i in listed] == keys
    if isinstance(store, S3ObjectStore):
        assert store.stats.op_counts["list"] == 4


async def test_delete_removes_and_is_idempotent(store: ObjectStore) -> None:
    await store.put("d/1", b"one")
    await store.put("d/2", b"two")
    await store.delete("d/1")
    await store.delete("d/1")
    await store.delete("never/existed")
    with pytest.raises(ObjectNotFoundError):
        await store.get("d/1")
    assert [i.key for i in await store.list("d/")] == ["d/2"]


async def test_put_overwrites_the_whole_object(store: ObjectStore) -> None:
    await store.put("k", b"a much longer first version")
    await store.put("k", b"short")
    assert await store.get("k") == b"short"
    assert await store.list() == [ObjectInfo("k", 5)]


async def test_empty_object_is_an_object(store: ObjectStore) -> None:
    await store.put("empty", b"")
    assert await store.get("empty") == b""
    assert await store.size("empty") == 0
    assert await store.get_range("empty", 0, 10) == b""
    assert await store.list() == [ObjectInfo("empty", 0)]


async def test_keys_with_unicode_and_spaces_round_trip(store: ObjectStore) -> None:
    key = "topics/été 2024/0/+%20&=.seg"
    await store.put(key, b"data")
    assert await store.get(key) == b"data"
    assert await store.list("topics/été") == [ObjectInfo(key, 4)]


async def test_large_object_round_trips(store: ObjectStore) -> None:
    data = os.urandom(20 * 1024 * 1024)
    await store.put("big/segment", data)
    assert await store.size("big/segment") == len(data)
    assert await store.get("big/segment") == data
    tail = await store.get_range("big/segment", len(data) - 100, len(data) + 100)
    assert tail == data[-100:]
    if isinstance(store, S3ObjectStore):  # 20 MiB in 5 MiB parts
        assert store.stats.op_counts["upload_part"] == 4
        assert store.stats.op_counts["complete_multipart_upload"] == 1


@pytest.mark.parametrize(
    "key", ["", "/abs", "a/../b", "..", "a//b", "a/", "./a", "a/./b", "a\x00b", "a\\b", "x" * 1025]
)
async def test_invalid_keys_are_rejected_before_any_io(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError, match="object key"):
        await store.put(key, b"data")
    with pytest.raises(ValueError, match="object key"):
        await store.get(key)
    with pytest.raises(ValueError, match="object key"):
        await store.delete(key)
    assert await store.list() == []
