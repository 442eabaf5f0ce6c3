"""Recovery keeps exactly the valid prefix of the WAL after torn writes and corruption."""

from __future__ import annotations

import logging
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from streamhouse.broker.wal import WalConfig, WalError, WriteAheadLog
from streamhouse.broker.wal.format import FILE_HEADER, VERSION

Batch = Callable[..., bytes]


async def build(config: WalConfig, batch: Batch, count: int) -> list[tuple[int, bytes]]:
    """A closed WAL of ``count`` entries (3 per file), returned in append order."""
    appended = [(i % 2, batch(i, payload_size=20 + i % 3)) for i in range(count)]
    wal = await WriteAheadLog.open(config)
    for entry in appended:
        await wal.append(*entry)
    await wal.close()
    return appended


async def reopen(config: WalConfig) -> tuple[list[tuple[int, bytes]], WriteAheadLog]:
    wal = await WriteAheadLog.open(config)
    entries = [(e.stream_id, e.batch) for e in wal.replay()]
    await wal.close()
    return entries, wal


def data_files(directory: Path) -> list[Path]:
    """WAL files holding entries (the newest, empty file left by the last open excluded)."""
    return [p for p in sorted(directory.glob("wal-*.log")) if p.stat().st_size > FILE_HEADER.size]


def entry_bounds(path: Path) -> list[tuple[int, int]]:
    """(start, end) of each entry in a file, read from the framing."""
    data = path.read_bytes()
    bounds, pos = [], FILE_HEADER.size
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        bounds.append((pos, pos + 8 + length))
        pos += 8 + length
    return bounds


async def test_torn_tail_at_every_byte_keeps_the_valid_prefix(
    config: WalConfig, batch: Batch, tmp_path: Path
) -> None:
    appended = await build(config, batch, 8)
    pristine = tmp_path / "pristine"
    shutil.copytree(config.directory, pristine)
    last_file = data_files(pristine)[-1]
    start, end = entry_bounds(last_file)[-1]
    assert end == last_file.stat().st_size
    for cut in range(start, end):
        shutil.rmtree(config.directory)
        shutil.copytree(pristine, config.directory)
        os.truncate(config.directory / last_file.name, cut)

        entries, wal = await reopen(config)

        assert entries == appended[:-1], f"cut at {cut}"
        report = wal.recovery_report
        assert report.entries_recovered == len(appended) - 1
        assert report.bytes_dropped == cut - start
        if cut == start:
            assert report.problems == []  # a clean entry boundary is no damage
        else:
            assert len(report.problems) == 1
            assert report.problems[0].startswith(f"{last_file.name} @ {start}: torn entry")
        assert (config.directory / last_file.name).stat().st_size == start  # truncated


async def test_flipped_byte_in_first_file_drops_it_from_there_and_all_later_files(
    config: WalConfig, batch: Batch, tmp_path: Path
) -> None:
    appended = await build(config, batch, 9)  # 3 files of 3 entries
    pristine = tmp_path / "pristine"
    shutil.copytree(config.directory, pristine)
    files = data_files(pristine)
    assert len(files) == 3
    first = files[0]
    start, end = entry_bounds(first)[1]  # entry k = 1 of file 1
    total = sum(p.stat().st_size for p in files)
    for pos in range(start, end):
        shutil.rmtree(config.directory)
        shutil.copytree(pristine, config.directory)
        target = config.directory / first.name
        data = bytearray(target.read_bytes())
        data[pos] ^= 0x5A
        target.write_bytes(data)

        entries, wal = await reopen(config)

        assert entries == appended[:1], f"flipped byte {pos}"
        report = wal.recovery_report
        assert report.bytes_dropped == total - start
        assert len(report.problems) == 1
        problem = report.problems[0]
        assert problem.startswith(f"{first.name} @ {start}: ")
        assert problem.endswith(f"and 2 later files ({total - first.stat().st_size} bytes)")
        assert [p.name for p in data_files(config.directory)] == [first.name]
    # the payload bytes are covered by the CRC: say so
    assert "CRC mismatch" in problem


async def test_corrupt_file_header_drops_that_file_and_later_ones(
    config: WalConfig, batch: Batch
) -> None:
    appended = await build(config, batch, 9)
    first, second, third = data_files(config.directory)
    data = bytearray(second.read_bytes())
    data[2] ^= 0xFF  # in the magic
    second.write_bytes(data)
    third_size = third.stat().st_size

    entries, wal = await reopen(config)

    assert entries == appended[:3]
    assert wal.recovery_report.problems == [
        f"{second.name} @ 0: bad file magic {bytes(data[:8])!r}; dropped {len(data)} bytes "
        f"and 1 later files ({third_size} bytes)"
    ]
    assert wal.recovery_report.bytes_dropped == len(data) + third_size
    assert not second.exists() and not third.exists()
    assert first.exists()


async def test_zero_filled_tail_is_cut(config: WalConfig, batch: Batch) -> None:
    """After a power loss a file can end in zeros (size was updated, data was not)."""
    appended = await build(config, batch, 5)
    last = data_files(config.directory)[-1]
    size = last.stat().st_size
    with open(last, "ab") as handle:
        handle.write(bytes(300))

    entries, wal = await reopen(config)

    assert entries == appended
    assert wal.recovery_report.bytes_dropped == 300
    assert "impossible entry length 0" in wal.recovery_report.problems[0]
    assert last.stat().st_size == size


async def test_absurd_declared_length_is_a_torn_tail_not_an_allocation(
    config: WalConfig, batch: Batch
) -> None:
    appended = await build(config, batch, 2)
    last = data_files(config.directory)[-1]
    with open(last, "ab") as handle:
        handle.write(struct.pack(">II", 0xFFFFFFFF, 0) + b"\x00" * 40)

    entries, wal = await reopen(config)

    assert entries == appended
    assert wal.recovery_report.bytes_dropped == 48
    assert "declares 4294967295 bytes, 40 remain" in wal.recovery_report.problems[0]


async def test_torn_file_header_of_newest_file_is_removed(config: WalConfig, batch: Batch) -> None:
    appended = await build(config, batch, 3)
    torn = config.directory / "wal-0000000000000099.log"
    torn.write_bytes(b"SHWAL0")

    entries, wal = await reopen(config)

    assert entries == appended
    assert not torn.exists()
    assert wal.recovery_report.bytes_dropped == 6
    assert "torn file header (6 of 20 bytes)" in wal.recovery_report.problems[0]


async def test_recovery_problems_are_logged_as_warnings(
    config: WalConfig, batch: Batch, caplog: pytest.LogCaptureFixture
) -> None:
    await build(config, batch, 2)
    last = data_files(config.directory)[-1]
    os.truncate(last, last.stat().st_size - 1)
    with caplog.at_level(logging.WARNING, logger="streamhouse.wal"):
        _entries, wal = await reopen(config)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert wal.recovery_report.problems[0] in caplog.records[0].getMessage()


async def test_file_of_another_format_version_is_left_alone(
    config: WalConfig, batch: Batch
) -> None:
    await build(config, batch, 2)
    first = data_files(config.directory)[0]
    data = bytearray(first.read_bytes())
    struct.pack_into(">H", data, 8, VERSION + 1)
    first.write_bytes(data)
    before = sorted((p.name, p.stat().st_size) for p in config.directory.iterdir())

    with pytest.raises(WalError, match=f"format version {VERSION + 1}"):
        await WriteAheadLog.open(config)

    assert sorted((p.name, p.stat().st_size) for p in config.directory.iterdir()) == before
    first.write_bytes(first.read_bytes()[:8] + struct.pack(">H", VERSION) + data[10:])
    entries, _wal = await reopen(config)  # the lock was released by the failed open
    assert len(entries) == 2


async def test_foreign_files_in_the_directory_are_ignored(config: WalConfig, batch: Batch) -> None:
    appended = await build(config, batch, 2)
    (config.directory / "notes.txt").write_text("hello")
    (config.directory / "wal-12.log").write_bytes(b"junk")
    entries, wal = await reopen(config)
    assert entries == appended
    assert wal.recovery_report.problems == []
    assert (config.directory / "notes.txt").exists()
