"""The write-ahead log shared by all partitions of a server.

A batch is appended here before it is acknowledged, and stays until the segment holding it is
committed to the object store. Appends are page-cache writes made from the event loop (one
``os.write`` per call, whatever the number of batches); fsyncs run in a worker thread and are
shared between concurrent appends (see :mod:`.group_commit`).

Durability contract per append (``sync=`` overrides the configured default):

* ``always``: returns after an fsync that covers the batch and every byte written before it,
  including the directory entry of a newly created file.
* ``interval``: returns after the write; the background task fsyncs within ``sync_interval_ms``.
* ``never``: returns after the write.

The WAL never holds a partial append: bad input is refused before anything is written, and a
failed write is cut back off the file (if even that fails, the WAL refuses all further appends).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streamhouse.broker.wal.config import SyncPolicy, WalConfig
from streamhouse.broker.wal.errors import (
    InvalidEntryError,
    WalClosedError,
    WalError,
    WalFullError,
)
from streamhouse.broker.wal.files import WalFile, fsync_all, write_all
from streamhouse.broker.wal.format import (
    ENTRY_OVERHEAD,
    FILE_HEADER,
    MAX_STREAM_ID,
    FileScan,
    batch_offsets,
    encode_entry_prefix,
    file_name,
)
from streamhouse.broker.wal.group_commit import GroupCommit
from streamhouse.broker.wal.recovery import WalRecoveryReport, recover

logger = logging.getLogger("streamhouse.wal")

LOCK_NAME = "LOCK"


@dataclass(frozen=True)
class WalEntry:
    """One replayed entry: the batch (final offsets inside) and where it was found."""

    stream_id: int
    batch: bytes
    file_seq: int
    position: int


@dataclass(frozen=True)
class WalStats:
    """Counters for metrics, since this WAL was opened.

    Attributes:
        appends: batches appended.
        bytes: bytes written, framing included.
        fsyncs: fsync rounds (one round fsyncs every dirty file, then the directory if needed).
        fsync_seconds_total: wall time spent in fsync rounds.
        fsync_seconds_max: the slowest round.
        files: WAL files on disk now.
    """

    appends: int
    bytes: int
    fsyncs: int
    fsync_seconds_total: float
    fsync_seconds_max: float
    files: int


class WriteAheadLog:
    """A directory of append-only files holding batches until their segments are committed.

    Use :meth:`open` (not the constructor): it takes the directory lock, runs recovery and
    starts a fresh file. Not thread-safe: call it from one event loop.
    """

    def __init__(
        self,
        config: WalConfig,
        lock_fd: int,
        dir_fd: int,
        files: dict[int, WalFile],
        report: WalRecoveryReport,
        highest_seq: int,
    ) -> None:
        self._config = config
        self._lock_fd = lock_fd
        self._dir_fd = dir_fd
        self._files = files  # by seq, in append order; the last one is the active file
        self.recovery_report = report
        self._recovered = list(files)
        self._next_seq = highest_seq + 1
        self._size = sum(f.size for f in files.values())
        self._committed: dict[int, int] = {}  # stream id -> next offset not yet committed
        self._commit = GroupCommit(self._sync_round)
        self._dir_dirty = False
        self._close_later: list[int] = []  # fds released while a round may be fsyncing them
        self._interval_wanted = 0
        self._interval_task: asyncio.Task[None] | None = None
        self._closed = False
        self._appends = 0
        self._bytes = 0
        self._fsyncs = 0
        self._fsync_total = 0.0
        self._fsync_max = 0.0
        self._active: WalFile = self._new_file()

    @classmethod
    async def open(cls, config: WalConfig) -> WriteAheadLog:
        """Open (or create) the WAL in ``config.directory`` and recover its valid prefix.

        Recovery runs here, in a worker thread: a torn or corrupt entry cuts the log (see
        :mod:`.recovery`), and ``recovery_report`` says what was kept and dropped. Appends then
        go to a new file, so :meth:`replay` sees exactly what was on disk at open.

        Raises:
            WalError: another WAL holds the directory, or a file is from another format version.
            OSError: the directory cannot be created or read.
        """
        directory = config.directory
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        lock_fd = _lock(directory)
        dir_fd = -1
        wal = None
        try:
            dir_fd = os.open(directory, os.O_RDONLY)
            recovered, report, highest = await asyncio.to_thread(recover, directory)
            files: dict[int, WalFile] = {}
            for found in recovered:
                if found.entries == 0:
                    found.path.unlink()  # a header and nothing else: holds nothing to replay
                    continue
                files[found.seq] = WalFile(
                    seq=found.seq,
                    path=found.path,
                    size=found.size,
                    entries=found.entries,
                    needed=dict(found.streams),
                )
            wal = cls(config, lock_fd, dir_fd, files, report, highest)
            await asyncio.to_thread(os.fsync, dir_fd)  # the new file's name is durable
            wal._dir_dirty = False
            wal._commit.synced = wal._commit.written
        except BaseException:
            if wal is not None and wal._active.fd is not None:
                os.close(wal._active.fd)
            if dir_fd >= 0:
                os.close(dir_fd)
            os.close(lock_fd)
            raise
        wal._interval_task = asyncio.get_running_loop().create_task(
            wal._interval_loop(), name="wal-interval-sync"
        )
        return wal

    # ----------------------------------------------------------------------------- reading

    def replay(self) -> Iterator[WalEntry]:
        """Yield the entries recovered at open, in append order.

        Only files found at open are read (appends made since go to newer files); a recovered
        file already deleted by :meth:`mark_committed` is skipped. Reads one file at a time.

        Raises:
            WalError: a recovered file changed on disk since open.
        """
        for seq in self._recovered:
            wal_file = self._files.get(seq)
            if wal_file is None:
                continue
            with open(wal_file.path, "rb") as handle:
                data = handle.read(wal_file.size)
            scan = FileScan(data, seq)
            for entry in scan:
                yield WalEntry(entry.stream_id, data[entry.start : entry.end], seq, entry.position)
            if scan.problem is not None or scan.valid_end != wal_file.size:
                raise WalError(f"{wal_file.path} changed since the WAL was opened")

    # ----------------------------------------------------------------------------- writing

    async def append(self, stream_id: int, batch: bytes, *, sync: SyncPolicy | None = None) -> None:
        """Append one batch of ``stream_id``; return once it is durable per the policy.

        Raises:
            InvalidEntryError: ``batch`` is not one RecordBatch v2, or the stream id is invalid.
            WalFullError: the WAL would grow beyond ``max_bytes`` (nothing written).
            WalClosedError: the WAL was closed.
            WalError: the write or an fsync failed.
        """
        await self.append_many(((stream_id, batch),), sync=sync)

    async def append_many(
        self, entries: Sequence[tuple[int, bytes]], *, sync: SyncPolicy | None = None
    ) -> None:
        """Append several batches (any streams) with one write per file; all or nothing.

        Raises:
            InvalidEntryError: one of the entries is invalid (none of them is written).
            WalFullError: they do not all fit under ``max_bytes`` (none of them is written).
            WalClosedError: the WAL was closed.
            WalError: a write failed (what was written is cut back off) or an fsync failed.
        """
        policy = self._config.sync_policy if sync is None else SyncPolicy(sync)
        self._check_open()
        prepared = [_prepare(stream_id, batch) for stream_id, batch in entries]
        if not prepared:
            return
        chunks, total = self._plan(prepared)
        if self._size + total > self._config.max_bytes:
            raise self._full_error(total)
        self._write_chunks(chunks)
        self._appends += len(prepared)
        position = self._commit.written
        if policy is SyncPolicy.ALWAYS:
            await self._commit.wait_synced(position)
        elif policy is SyncPolicy.INTERVAL:
            self._interval_wanted = position

    def _plan(self, prepared: list[_Prepared]) -> tuple[list[_Chunk], int]:
        """Split entries into per-file chunks (rolling past ``file_max_bytes``); total bytes."""
        limit = self._config.file_max_bytes
        size = self._active.size
        has_entries = self._active.entries > 0
        chunks = [_Chunk(new_file=False)]
        total = 0
        for item in prepared:
            length = ENTRY_OVERHEAD + len(item.batch)
            if has_entries and size + length > limit:
                chunks.append(_Chunk(new_file=True))
                size = FILE_HEADER.size
                total += FILE_HEADER.size
            chunks[-1].items.append(item)
            size += length
            total += length
            has_entries = True
        return [chunk for chunk in chunks if chunk.items], total

    def _write_chunks(self, chunks: list[_Chunk]) -> None:
        undo: list[_Undo] = []
        try:
            for chunk in chunks:
                if chunk.new_file:
                    self._roll()
                target = self._active
                assert target.fd is not None
                parts = []
                for item in chunk.items:
                    parts.append(item.prefix)
                    parts.append(item.batch)
                data = b"".join(parts)
                step = _Undo(target, target.size, target.entries)
                undo.append(step)
                write_all(target.fd, data)
                self._account(target, chunk, len(data), step)
        except OSError as exc:
            self._undo(undo, exc)
            raise WalError(f"WAL write failed ({exc!r}); nothing of this append was kept") from exc

    def _account(self, target: WalFile, chunk: _Chunk, length: int, step: _Undo) -> None:
        target.size += length
        target.entries += len(chunk.items)
        self._size += length
        self._bytes += length
        self._commit.written += length
        target.written_to = self._commit.written
        needed = target.needed
        for item in chunk.items:
            previous = needed.get(item.stream_id)
            if previous is None or item.last_offset > previous:
                needed[item.stream_id] = item.last_offset
                step.changes.append((item.stream_id, previous))

    def _undo(self, undo: list[_Undo], cause: OSError) -> None:
        """Cut this append's bytes back off every file it touched, newest first."""
        try:
            for step in reversed(undo):
                wal_file = step.file
                for stream_id, previous in reversed(step.changes):
                    if previous is None:
                        wal_file.needed.pop(stream_id, None)
                    else:
                        wal_file.needed[stream_id] = previous
                if wal_file.seq not in self._files or wal_file.fd is None:
                    continue  # deleted meanwhile: nothing of it can be replayed
                os.ftruncate(wal_file.fd, step.size)
                self._size -= wal_file.size - step.size
                wal_file.size = step.size
                wal_file.entries = step.entries
        except OSError as exc:
            error = WalError(
                f"WAL write failed ({cause!r}) and the partial write could not be removed "
                f"({exc!r}); the WAL refuses further appends"
            )
            logger.error("%s", error)
            self._commit.fail(error)
            raise error from exc

    def _roll(self) -> None:
        """Start a new active file; the old one is deleted, closed or left for the next fsync."""
        old = self._active
        self._active = self._new_file()
        old.needed = {
            stream_id: last
            for stream_id, last in old.needed.items()
            if last >= self._committed.get(stream_id, 0)
        }
        if not old.needed:
            self._delete(old)
        elif not old.dirty:
            self._release_fd(old)

    def _new_file(self) -> WalFile:
        seq = self._next_seq
        wal_file = WalFile.create(self._config.directory, seq, file_name(seq))
        self._next_seq += 1
        wal_file.written_to = wal_file.synced_to = self._commit.written
        self._files[seq] = wal_file
        self._size += wal_file.size
        self._dir_changed()
        return wal_file

    # ----------------------------------------------------------------------------- committing

    def mark_committed(self, stream_id: int, next_offset: int) -> None:
        """Record that every batch of ``stream_id`` ending before ``next_offset`` is committed.

        Files in which nothing is needed any more (other than the active file) are deleted at
        once, which is what frees space after a :class:`WalFullError`. The directory fsync for
        the deletions runs in the background.

        Call it for every stream found by :meth:`replay` too (with a huge ``next_offset`` for a
        stream this server no longer owns): a file is kept while any of its streams needs it.
        """
        if next_offset <= self._committed.get(stream_id, 0):
            return
        self._committed[stream_id] = next_offset
        doomed = []
        for wal_file in self._files.values():
            if wal_file is self._active:
                continue
            last = wal_file.needed.get(stream_id)
            if last is not None and last < next_offset:
                del wal_file.needed[stream_id]
                if not wal_file.needed:
                    doomed.append(wal_file)
        for wal_file in doomed:
            self._delete(wal_file)
        if doomed and not self._closed:
            with contextlib.suppress(RuntimeError):  # no running loop: the next round does it
                self._commit.request()

    def _delete(self, wal_file: WalFile) -> None:
        try:
            wal_file.path.unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("could not delete committed WAL file %s: %r", wal_file.path, exc)
            return
        self._release_fd(wal_file)
        del self._files[wal_file.seq]
        self._size -= wal_file.size
        self._dir_changed()

    def _dir_changed(self) -> None:
        # A directory change counts as one logical byte written: a round whose target covers
        # it has seen ``_dir_dirty`` (both are read in the same step), so ``sync()`` and any
        # later ``always`` append also wait for the directory fsync.
        self._dir_dirty = True
        self._commit.written += 1

    def _release_fd(self, wal_file: WalFile) -> None:
        if wal_file.fd is None:
            return
        if self._commit.in_flight:
            self._close_later.append(wal_file.fd)  # a worker thread may be fsyncing it
        else:
            os.close(wal_file.fd)
        wal_file.fd = None

    # ----------------------------------------------------------------------------- syncing

    async def sync(self) -> None:
        """Fsync everything written so far, and the directory if files came or went.

        Shares rounds with concurrent appends and syncs; under a steady stream of appends it
        still returns after at most two rounds (it waits for its own position only).

        Raises:
            WalError: an fsync failed (now or before).
        """
        if self._commit.failure is not None:
            raise WalError(str(self._commit.failure))
        await self._commit.wait_synced(self._commit.written)

    async def _sync_round(self, target: int) -> None:
        """One fsync round: every dirty file, then the directory if files came or went."""
        dirty = [f for f in self._files.values() if f.dirty]
        fds = [f.fd for f in dirty if f.fd is not None]
        dir_fd = self._dir_fd if self._dir_dirty else None
        self._dir_dirty = False
        if not fds and dir_fd is None:
            return
        started = time.perf_counter()
        try:
            await asyncio.to_thread(fsync_all, fds, dir_fd)
        finally:
            for fd in self._close_later:
                os.close(fd)
            self._close_later.clear()
        elapsed = time.perf_counter() - started
        self._fsyncs += 1
        self._fsync_total += elapsed
        self._fsync_max = max(self._fsync_max, elapsed)
        for wal_file in dirty:
            wal_file.synced_to = max(wal_file.synced_to, target)
            if wal_file is not self._active and not wal_file.dirty:
                self._release_fd(wal_file)

    async def _interval_loop(self) -> None:
        delay = self._config.sync_interval_ms / 1000
        while True:
            await asyncio.sleep(delay)
            if self._interval_wanted > self._commit.synced:
                try:
                    await self._commit.wait_synced(self._interval_wanted)
                except WalError:
                    return  # reported to every appender; nothing left to sync

    # ----------------------------------------------------------------------------- state

    @property
    def size_bytes(self) -> int:
        """Bytes of all WAL files on disk (compared with ``max_bytes`` for backpressure)."""
        return self._size

    @property
    def stats(self) -> WalStats:
        """A snapshot of the counters."""
        return WalStats(
            appends=self._appends,
            bytes=self._bytes,
            fsyncs=self._fsyncs,
            fsync_seconds_total=self._fsync_total,
            fsync_seconds_max=self._fsync_max,
            files=len(self._files),
        )

    async def close(self) -> None:
        """Fsync what was written and close; later appends raise :class:`WalClosedError`.

        Raises:
            WalError: the final fsync failed (the files are closed anyway).
        """
        if self._closed:
            return
        self._closed = True
        if self._interval_task is not None:
            self._interval_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._interval_task
        try:
            await self.sync()
        finally:
            await self._commit.drain()
            for wal_file in self._files.values():
                self._release_fd(wal_file)
            os.close(self._dir_fd)
            os.close(self._lock_fd)

    def _check_open(self) -> None:
        if self._closed:
            raise WalClosedError(f"the WAL in {self._config.directory} is closed")
        if self._commit.failure is not None:
            raise WalError(str(self._commit.failure))

    def _full_error(self, needed: int) -> WalFullError:
        limit = self._config.max_bytes
        if needed > limit:
            return WalFullError(
                f"an append of {needed} bytes can never fit in a WAL of max_bytes={limit}; "
                "split it into smaller batches or raise max_bytes"
            )
        return WalFullError(
            f"WAL is full: {self._size} of {limit} bytes on disk ({len(self._files)} files), "
            f"this append needs {needed} more. Space is freed when segment commits let "
            "mark_committed() delete files; retry later, or raise max_bytes if segments "
            "commit too slowly for the ingest rate"
        )


@dataclass
class _Prepared:
    stream_id: int
    batch: bytes
    prefix: bytes
    last_offset: int


@dataclass
class _Chunk:
    """Entries that go into one file with one write."""

    new_file: bool
    items: list[_Prepared] = field(default_factory=list)


@dataclass
class _Undo:
    """What one chunk changed, so that a failed append can be taken back."""

    file: WalFile
    size: int
    entries: int
    changes: list[tuple[int, int | None]] = field(default_factory=list)  # (stream, old newest)


def _prepare(stream_id: int, batch: bytes) -> _Prepared:
    if isinstance(stream_id, bool) or not isinstance(stream_id, int):
        raise InvalidEntryError(f"stream_id must be an int, got {type(stream_id).__name__}")
    if not 0 <= stream_id <= MAX_STREAM_ID:
        raise InvalidEntryError(f"stream_id {stream_id} is outside 0..2**64-1")
    if not isinstance(batch, bytes | bytearray | memoryview):
        raise InvalidEntryError(f"batch must be bytes, got {type(batch).__name__}")
    _base, last = batch_offsets(batch)
    return _Prepared(stream_id, batch, encode_entry_prefix(stream_id, batch), last)


def _lock(directory: Path) -> int:
    """Take the directory's lock so two WALs (or two servers) never append to one directory."""
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WalError(
            f"the WAL in {directory} is already open (another process or WriteAheadLog); "
            "close it first, or give this server its own data directory"
        ) from None
    return fd
