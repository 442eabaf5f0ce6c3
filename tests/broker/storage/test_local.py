"""LocalObjectStore specifics: atomic, durable puts and keys that cannot escape the root."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamhouse.broker.storage import LocalObjectStore, ObjectNotFoundError, ObjectStoreError
from streamhouse.broker.storage import local as local_module
from streamhouse.broker.storage.local import STALE_TEMP_AGE_S, TEMP_SUFFIX

# Child process: start a put whose fsync never returns (the bytes are in the temp file), say so,
# and wait to be killed - a crash in the middle of a write.
CHILD = """
import asyncio, os, sys, time
from pathlib import Path
from streamhouse.broker.storage import LocalObjectStore

def hang(fd):
    print("writing", flush=True)
    time.sleep(60)

os.fsync = hang
asyncio.run(LocalObjectStore(Path(sys.argv[1])).put("t/0/seg", b"new" * 300_000))
"""


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def test_put_killed_mid_write_never_exposes_a_partial_object(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = LocalObjectStore(root)
    await store.put("t/0/seg", b"old version")

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "writing"
        child.kill()
    finally:
        child.wait(timeout=10)

    # The torn write is on disk, but only under a temporary name.
    leftovers = [name for name in files_under(root) if name.endswith(TEMP_SUFFIX)]
    assert len(leftovers) == 1
    assert (root / leftovers[0]).stat().st_size > 0

    reopened = LocalObjectStore(root)
    assert await reopened.get("t/0/seg") == b"old version"
    assert [info.key for info in await reopened.list()] == ["t/0/seg"]

    # Once nobody can still be writing it, listing sweeps the leftover away.
    old = time.time() - STALE_TEMP_AGE_S - 10
    os.utime(root / leftovers[0], (old, old))
    assert [info.key for info in await reopened.list()] == ["t/0/seg"]
    assert files_under(root) == ["t/0/seg"]


async def test_failed_rename_leaves_old_object_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put("a/b", b"v1")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "simulated I/O error")

    monkeypatch.setattr(local_module.os, "replace", broken_replace)
    with pytest.raises(ObjectStoreError, match=r"put 'a/b' failed.*simulated I/O error"):
        await store.put("a/b", b"v2")
    with pytest.raises(ObjectStoreError):
        await store.put("a/new", b"v2")
    monkeypatch.undo()

    assert await store.get("a/b") == b"v1"
    with pytest.raises(ObjectNotFoundError):
        await store.get("a/new")
    assert files_under(tmp_path) == ["a/b"]


async def test_disk_full_during_write_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalObjectStore(tmp_path)
    real_write = os.write
    calls = 0

    def short_then_full(fd: int, data: bytes) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:  # a partial write first, as a real full disk does
            return real_write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(local_module.os, "write", short_then_full)
    with pytest.raises(ObjectStoreError, match="No space left"):
        await store.put("seg", b"x" * 1000)
    monkeypatch.undo()
    assert calls == 2
    assert await store.list() == []
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    "key",
    ["../escape", "a/../../escape", "/etc/passwd", "a/..", "..", "seg" + TEMP_SUFFIX, "a\\..\\b"],
)
async def test_keys_that_could_escape_the_root_are_rejected(tmp_path: Path, key: str) -> None:
    root = tmp_path / "root"
    store = LocalObjectStore(root)
    for call in (store.put(key, b"evil"), store.get(key), store.size(key), store.delete(key)):
        with pytest.raises(ValueError, match="object key"):
            await call
    assert files_under(tmp_path) == []


async def test_list_rejects_prefixes_that_walk_out_of_the_root(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "root")
    for prefix in ("../", "a/../", "/etc"):
        with pytest.raises(ValueError, match="list prefix"):
            await store.list(prefix)


async def test_objects_are_plain_files_under_the_root(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put("topics/t/0/seg", b"data")
    assert (tmp_path / "topics" / "t" / "0" / "seg").read_bytes() == b"data"


async def test_a_key_prefix_is_not_an_object(tmp_path: Path) -> None:
    """A directory made by longer keys is not an object: get fails, delete is a no-op."""
    store = LocalObjectStore(tmp_path)
    await store.put("dir/obj", b"x")
    with pytest.raises(ObjectNotFoundError):
        await store.get("dir")
    with pytest.raises(ObjectNotFoundError):
        await store.size("dir")
    await store.delete("dir")
    with pytest.raises(ObjectNotFoundError):
        await store.get("dir/obj/deeper")
    await store.delete("dir/obj/deeper")
    assert await store.get("dir/obj") == b"x"


async def test_key_under_an_existing_object_fails_clearly(tmp_path: Path) -> None:
    """S3 allows both 'a' and 'a/b'; a filesystem cannot, so the second put fails cleanly."""
    store = LocalObjectStore(tmp_path)
    await store.put("a", b"file")
    with pytest.raises(ObjectStoreError, match="put 'a/b' failed"):
        await store.put("a/b", b"nested")
    assert await store.list() == [local_module.ObjectInfo("a", 4)]
