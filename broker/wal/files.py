"""One WAL file on disk and what the log remembers about it.

The log keeps, per file, the newest offset of every stream it holds. That is all it needs to
decide when a file may go: once every one of those streams has been committed past that offset,
nothing in the file can be needed again, whatever else it holds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from streamhouse.broker.wal.format import FILE_HEADER, encode_file_header


@dataclass
class WalFile:
    """Bookkeeping for one file.

    Attributes:
        seq: its sequence number (the name is ``wal-<seq>.log``).
        path: where it is.
        size: bytes on disk, header included.
        entries: entries written to it (or recovered from it).
        needed: stream id -> newest last offset of that stream in this file, for the streams not
            yet committed past it. The file may be deleted when this is empty and the file is
            no longer the one being appended to.
        fd: open for appending (the active file, or one rolled away whose data is not yet
            fsynced); ``None`` once closed.
        written_to: logical WAL position just after the last byte written to it.
        synced_to: logical position up to which an fsync round covered it.
    """

    seq: int
    path: Path
    size: int
    entries: int = 0
    needed: dict[int, int] = field(default_factory=dict)
    fd: int | None = None
    written_to: int = 0
    synced_to: int = 0

    @property
    def dirty(self) -> bool:
        """Whether bytes written to it may not be on stable storage yet."""
        return self.fd is not None and self.written_to > self.synced_to

    @classmethod
    def create(cls, directory: Path, seq: int, name: str) -> WalFile:
        """Create a new, empty file (header only) open for appending.

        Raises:
            OSError: it could not be created or its header written; nothing is left behind.
        """
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            write_all(fd, encode_file_header(seq))
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return cls(seq=seq, path=path, size=FILE_HEADER.size, fd=fd)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte (a regular file may accept a write only partly, e.g. near ENOSPC)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_all(fds: list[int], dir_fd: int | None) -> None:
    """Fsync files, then the directory; runs in a worker thread, off the event loop."""
    for fd in fds:
        os.fsync(fd)
    if dir_fd is not None:
        os.fsync(dir_fd)
