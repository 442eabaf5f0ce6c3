"""Startup scan: find the valid prefix of the WAL and cut everything after it.

A crash can leave a torn entry at the end of the newest file, and a disk can corrupt bytes
anywhere. Either way the WAL keeps exactly the entries before the first one it cannot trust:
the damaged file is truncated there and every later file is removed. Keeping later files would
leave a hole in some partition's offsets, which the log could not place densely; with the
``always`` policy nothing acknowledged lies after a hole (everything before an acknowledged
entry was fsynced with it), so the cut only ever loses unacknowledged data.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from streamhouse.broker.wal.format import FILE_HEADER, FILE_NAME, FileScan, file_name

logger = logging.getLogger("streamhouse.wal")


@dataclass
class WalRecoveryReport:
    """What the startup scan found, for logs, metrics and tests.

    Attributes:
        files_scanned: WAL files read.
        entries_recovered: entries in the valid prefix (what ``replay`` yields).
        bytes_dropped: bytes cut from the damaged file plus the sizes of the removed later files.
        problems: one line per cut, e.g. ``"wal-0000000000000003.log @ 4096: CRC mismatch;
            dropped 812 bytes and 2 later files (131072 bytes)"``.
    """

    files_scanned: int = 0
    entries_recovered: int = 0
    bytes_dropped: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class RecoveredFile:
    """A file of the valid prefix: its size and, per stream, the newest offset it holds."""

    seq: int
    path: Path
    size: int
    entries: int
    streams: dict[int, int]


def list_wal_files(directory: Path) -> list[tuple[int, Path]]:
    """WAL files in ``directory`` in append order; other names (a lock file) are ignored."""
    found = []
    for name in os.listdir(directory):
        match = FILE_NAME.match(name)
        if match:
            found.append((int(match.group(1)), directory / name))
    found.sort()
    return found


def recover(directory: Path) -> tuple[list[RecoveredFile], WalRecoveryReport, int]:
    """Scan every WAL file, cut the log at the first bad entry, and describe what was kept.

    Returns:
        The kept files, the report, and the highest file sequence number seen (removed files
        included), so that new files never reuse a name that a log line mentioned.

    Raises:
        WalError: a file is from another WAL format version (nothing is changed then).
        OSError: the directory or a file could not be read, truncated or removed.
    """
    report = WalRecoveryReport()
    kept: list[RecoveredFile] = []
    files = list_wal_files(directory)
    highest = files[-1][0] if files else 0
    for index, (seq, path) in enumerate(files):
        data = path.read_bytes()
        report.files_scanned += 1
        scan = FileScan(data, seq)
        streams: dict[int, int] = {}
        entries = 0
        for entry in scan:
            entries += 1
            if entry.last_offset > streams.get(entry.stream_id, -1):
                streams[entry.stream_id] = entry.last_offset
        report.entries_recovered += entries
        if scan.problem is None:
            kept.append(RecoveredFile(seq, path, len(data), entries, streams))
            continue
        later = files[index + 1 :]
        _cut(directory, seq, path, scan.valid_end, len(data), scan.problem, later, report)
        if scan.valid_end >= FILE_HEADER.size:
            kept.append(RecoveredFile(seq, path, scan.valid_end, entries, streams))
        break
    return kept, report, highest


def _cut(
    directory: Path,
    seq: int,
    path: Path,
    valid_end: int,
    size: int,
    problem: str,
    later: list[tuple[int, Path]],
    report: WalRecoveryReport,
) -> None:
    dropped = size - valid_end
    later_bytes = 0
    if valid_end < FILE_HEADER.size:
        path.unlink()
    else:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, valid_end)
            os.fsync(fd)
        finally:
            os.close(fd)
    for _seq, later_path in later:
        later_bytes += later_path.stat().st_size
        later_path.unlink()
    _fsync_dir(directory)
    message = f"{file_name(seq)} @ {valid_end}: {problem}; dropped {dropped} bytes"
    if later:
        message += f" and {len(later)} later files ({later_bytes} bytes)"
    report.bytes_dropped += dropped + later_bytes
    report.problems.append(message)
    logger.warning("WAL recovery cut the log: %s", message)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
