"""Objects as files under one directory: the embedded default store.

A put writes a temporary file next to the target, fsyncs it, renames it over the key with
``os.replace`` and fsyncs the directory. Rename is atomic on POSIX filesystems, so a reader (or a
process restarted after a crash) sees the old object, the new object, or nothing - never a torn
one. Temporary files carry a reserved suffix, are invisible to ``list`` and are swept once they
are old enough that no writer can still own them.

All file I/O runs in worker threads (``asyncio.to_thread``) so a slow disk never stalls the event
loop that also serves Kafka clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from streamhouse.broker.storage.base import (
    ObjectInfo,
    validate_key,
    validate_prefix,
    validate_range,
)
from streamhouse.broker.storage.errors import ObjectNotFoundError, ObjectStoreError

#: Suffix of in-progress writes. Keys may not end with it, so no object is ever mistaken for one.
TEMP_SUFFIX = ".sh-partial"
#: A temporary file older than this belongs to a writer that died; ``list`` removes it.
STALE_TEMP_AGE_S = 3600.0

_T = TypeVar("_T")


def _fsync_dir(directory: Path) -> None:
    """Makes a rename or create inside ``directory`` durable (POSIX needs the dir fsynced)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalObjectStore:
    """An :class:`~.base.ObjectStore` on the local filesystem.

    Args:
        root: directory holding the objects; created if missing. Key ``a/b/c`` is the file
            ``root/a/b/c``.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    # ------------------------------------------------------------------ helpers
    def _path(self, key: str) -> Path:
        validate_key(key)
        if key.endswith(TEMP_SUFFIX):
            raise ValueError(f"object key {key!r} ends with the reserved suffix {TEMP_SUFFIX!r}")
        return self.root.joinpath(*key.split("/"))

    async def _run(self, op: str, key: str, fn: Callable[[], _T]) -> _T:
        """Runs blocking ``fn`` in a thread and maps OS errors to store errors naming the key."""
        try:
            return await asyncio.to_thread(fn)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            if op == "put":
                raise ObjectStoreError(f"local store: put {key!r} failed: {exc}") from exc
            raise ObjectNotFoundError(key) from exc
        except OSError as exc:
            raise ObjectStoreError(f"local store: {op} {key!r} failed: {exc}") from exc

    def _make_dirs(self, directory: Path) -> None:
        """Creates ``directory`` and fsyncs the parent of every directory it had to create."""
        missing: list[Path] = []
        current = directory
        while not current.is_dir():
            missing.append(current)
            current = current.parent
        if not missing:
            return
        directory.mkdir(parents=True, exist_ok=True)
        for created in reversed(missing):
            _fsync_dir(created.parent)

    # ------------------------------------------------------------------ contract
    async def put(self, key: str, data: bytes) -> None:
        """Writes ``data`` under ``key`` atomically and durably (see the module docstring)."""
        path = self._path(key)
        payload = memoryview(data)

        def write() -> None:
            self._make_dirs(path.parent)
            tmp = path.parent / f".{secrets.token_hex(8)}{TEMP_SUFFIX}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                try:
                    view = payload
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            _fsync_dir(path.parent)

        await self._run("put", key, write)

    async def get(self, key: str) -> bytes:
        """Returns the whole object."""
        path = self._path(key)
        return await self._run("get", key, path.read_bytes)

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        """Returns bytes ``[start, end)``, clamped to the object's size."""
        path = self._path(key)
        validate_range(start, end)

        def read() -> bytes:
            with open(path, "rb") as f:
                if start == end:
                    return b""
                f.seek(start)
                return f.read(end - start)

        return await self._run("get_range", key, read)

    async def size(self, key: str) -> int:
        """Returns the object's size in bytes."""
        path = self._path(key)

        def stat_file() -> int:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                raise IsADirectoryError(str(path))
            return st.st_size

        return await self._run("size", key, stat_file)

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Returns the objects whose key starts with ``prefix``, sorted by key.

        Only the directories that can hold matching keys are walked.
        """
        validate_prefix(prefix)
        return await self._run("list", prefix, lambda: self._list_sync(prefix))

    def _list_sync(self, prefix: str) -> list[ObjectInfo]:
        dir_part = prefix.rpartition("/")[0]
        base = self.root.joinpath(*dir_part.split("/")) if dir_part else self.root
        if not base.is_dir():
            return []
        found: list[ObjectInfo] = []
        now = time.time()
        stack = [(base, f"{dir_part}/" if dir_part else "")]
        while stack:
            directory, key_prefix = stack.pop()
            try:
                entries = list(os.scandir(directory))
            except FileNotFoundError:  # removed while we walked
                continue
            for entry in entries:
                key = key_prefix + entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        sub = key + "/"
                        if sub.startswith(prefix) or prefix.startswith(sub):
                            stack.append((Path(entry.path), sub))
                        continue
                    if entry.name.endswith(TEMP_SUFFIX):
                        if now - entry.stat().st_mtime > STALE_TEMP_AGE_S:
                            os.unlink(entry.path)
                        continue
                    if entry.is_file(follow_symlinks=False) and key.startswith(prefix):
                        found.append(ObjectInfo(key, entry.stat().st_size))
                except FileNotFoundError:  # deleted concurrently: it is simply not listed
                    continue
        found.sort(key=lambda info: info.key)
        return found

    async def delete(self, key: str) -> None:
        """Removes the object; a missing key is fine (retention may race with itself)."""
        path = self._path(key)

        def remove() -> None:
            try:
                os.unlink(path)
            except (FileNotFoundError, NotADirectoryError):
                return
            except IsADirectoryError:  # only a "directory" of other keys: no object here
                return
            except PermissionError:
                if path.is_dir():  # some platforms report EPERM for unlink(dir)
                    return
                raise
            _fsync_dir(path.parent)

        await self._run("delete", key, remove)

    async def close(self) -> None:
        """Nothing to release: every operation opens and closes its own files."""
