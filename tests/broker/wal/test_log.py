"""Appending, replaying, committing and closing the WAL."""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from streamhouse.broker.wal import (
    InvalidEntryError,
    SyncPolicy,
    WalClosedError,
    WalConfig,
    WalError,
    WalFullError,
    WriteAheadLog,
)
from streamhouse.broker.wal.format import FILE_HEADER

Batch = Callable[..., bytes]


def wal_files(config: WalConfig) -> list[str]:
    return sorted(name for name in os.listdir(config.directory) if name.startswith("wal-"))


def summary(wal: WriteAheadLog) -> list[tuple[int, bytes]]:
    return [(entry.stream_id, entry.batch) for entry in wal.replay()]


async def test_round_trip_across_file_rolls(config: WalConfig, batch: Batch) -> None:
    appended = []
    wal = await WriteAheadLog.open(config)
    for i in range(30):
        stream = i % 3
        entry = (stream, batch(i // 3, count=1 + i % 4, payload_size=10 + i))
        appended.append(entry)
        await wal.append(*entry)
    many = [(7, batch(100 + i)) for i in range(5)]
    await wal.append_many(many)
    appended += many
    assert wal.stats.appends == 35
    assert wal.stats.files > 5, "the small file_max_bytes must have rolled files"
    await wal.close()

    wal = await WriteAheadLog.open(config)
    try:
        entries = list(wal.replay())
        assert [(e.stream_id, e.batch) for e in entries] == appended
        assert wal.recovery_report.problems == []
        assert wal.recovery_report.entries_recovered == 35
        assert wal.recovery_report.bytes_dropped == 0
        # positions are the append order: file by file, increasing within a file
        keys = [(e.file_seq, e.position) for e in entries]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        assert all(e.position >= FILE_HEADER.size for e in entries)
        for path in config.directory.glob("wal-*.log"):
            assert path.stat().st_size <= config.file_max_bytes
        # replay can be repeated and yields the same
        assert summary(wal) == appended
    finally:
        await wal.close()


async def test_appends_after_reopen_go_to_a_new_file_and_replay_later(
    config: WalConfig, batch: Batch
) -> None:
    wal = await WriteAheadLog.open(config)
    await wal.append(1, batch(0))
    await wal.close()
    wal = await WriteAheadLog.open(config)
    await wal.append(1, batch(1))
    assert summary(wal) == [(1, batch(0))], "replay shows what was on disk at open only"
    await wal.close()
    wal = await WriteAheadLog.open(config)
    assert summary(wal) == [(1, batch(0)), (1, batch(1))]
    await wal.close()
    assert len(wal_files(config)) == 3  # two with data and the one opened last (empty)


async def test_empty_files_are_removed_at_open(config: WalConfig, batch: Batch) -> None:
    for _ in range(3):
        wal = await WriteAheadLog.open(config)
        await wal.close()
    assert len(wal_files(config)) == 1
    wal = await WriteAheadLog.open(config)
    assert summary(wal) == []
    assert wal.recovery_report.files_scanned == 1
    await wal.close()


@pytest.mark.parametrize(
    ("stream_id", "make", "message"),
    [
        (1, lambda b: b[:60], "at least 61 bytes"),
        (1, lambda b: b + b, "exactly one RecordBatch"),
        (1, lambda b: b[:-1], "exactly one RecordBatch"),
        (1, lambda b: b[:16] + b"\x01" + b[17:], "magic is 1"),
        (1, lambda b: b[:23] + struct.pack(">i", -1) + b[27:], "last offset delta -1"),
        (1, lambda b: struct.pack(">q", -5) + b[8:], "base offset -5"),
        (1, lambda b: "text", "must be bytes"),
        (-1, lambda b: b, "outside 0..2**64-1"),
        (2**64, lambda b: b, "outside 0..2**64-1"),
        (True, lambda b: b, "must be an int"),
        ("1", lambda b: b, "must be an int"),
    ],
)
async def test_invalid_entries_are_refused_and_nothing_is_stored(
    wal: WriteAheadLog, batch: Batch, stream_id: object, make: Callable, message: str
) -> None:
    size = wal.size_bytes
    bad = make(batch(0, count=3))
    with pytest.raises(InvalidEntryError, match=message.replace("*", r"\*")):
        # a good entry first: the whole call must be refused
        await wal.append_many([(1, batch(9)), (stream_id, bad)])  # type: ignore[list-item]
    with pytest.raises(ValueError):  # InvalidEntryError is a ValueError too
        await wal.append(stream_id, bad)  # type: ignore[arg-type]
    assert wal.size_bytes == size
    assert wal.stats.appends == 0


async def test_unknown_sync_policy_is_refused(wal: WriteAheadLog, batch: Batch) -> None:
    with pytest.raises(ValueError, match="sometimes"):
        await wal.append(1, batch(0), sync="sometimes")  # type: ignore[arg-type]
    assert wal.stats.appends == 0


async def test_mark_committed_deletes_only_files_nobody_needs(
    config: WalConfig, batch: Batch
) -> None:
    wal = await WriteAheadLog.open(config)
    # 3 entries per file. file A: s1@0, s2@0, s1@1   file B: s1@2, s1@3, s1@4
    # file C (active): s1@5
    for stream, offset in [(1, 0), (2, 0), (1, 1), (1, 2), (1, 3), (1, 4), (1, 5)]:
        await wal.append(stream, batch(offset))
    first, second, active = wal_files(config)
    assert wal.stats.files == 3

    wal.mark_committed(1, 4)  # B still holds s1@4
    assert wal_files(config) == [first, second, active]
    wal.mark_committed(1, 5)  # all of s1 in A and B, but A still holds s2@0
    assert wal_files(config) == [first, active]
    wal.mark_committed(2, 0)  # nothing of s2 is committed yet
    assert wal_files(config) == [first, active]
    wal.mark_committed(2, 1)
    assert wal_files(config) == [active]
    wal.mark_committed(1, 1000)  # the active file is never deleted
    assert wal_files(config) == [active]
    assert wal.stats.files == 1
    assert wal.size_bytes == (config.directory / active).stat().st_size
    await wal.close()

    wal = await WriteAheadLog.open(config)
    assert summary(wal) == [(1, batch(5))]
    await wal.close()


async def test_commit_before_roll_deletes_file_when_it_rolls(
    config: WalConfig, batch: Batch
) -> None:
    wal = await WriteAheadLog.open(config)
    for offset in range(3):
        await wal.append(4, batch(offset))
    wal.mark_committed(4, 3)  # the active file is all committed, but still active
    assert wal.stats.files == 1
    await wal.append(4, batch(3))  # rolls: the old file goes at once
    assert wal.stats.files == 1
    await wal.close()
    wal = await WriteAheadLog.open(config)
    assert summary(wal) == [(4, batch(3))]
    await wal.close()


async def test_replayed_files_are_deleted_once_committed(config: WalConfig, batch: Batch) -> None:
    wal = await WriteAheadLog.open(config)
    for offset in range(6):
        await wal.append(1, batch(offset))
    await wal.close()
    wal = await WriteAheadLog.open(config)
    assert len(summary(wal)) == 6
    wal.mark_committed(1, 3)
    assert [struct.unpack_from(">q", b)[0] for _, b in summary(wal)] == [3, 4, 5]
    wal.mark_committed(1, 6)
    assert summary(wal) == []
    assert wal.stats.files == 1
    await wal.close()


async def test_full_wal_refuses_appends_until_commits_free_space(
    config: WalConfig, batch: Batch
) -> None:
    config = dataclasses.replace(config, max_bytes=1000)
    wal = await WriteAheadLog.open(config)
    offset = 0
    with pytest.raises(WalFullError) as raised:
        while True:
            await wal.append(1, batch(offset))
            offset += 1
    assert offset >= 6
    message = str(raised.value)
    assert "of 1000 bytes" in message and "mark_committed" in message
    size, appends = wal.size_bytes, wal.stats.appends
    assert size <= 1000
    with pytest.raises(WalFullError):
        await wal.append_many([(1, batch(offset)), (1, batch(offset + 1))])
    assert (wal.size_bytes, wal.stats.appends) == (size, appends)

    wal.mark_committed(1, offset - 2)
    assert wal.size_bytes < size
    await wal.append(1, batch(offset))
    await wal.close()
    wal = await WriteAheadLog.open(config)
    offsets = [struct.unpack_from(">q", b)[0] for _, b in summary(wal)]
    assert offsets == list(range(offsets[0], offset + 1))
    await wal.close()


async def test_an_entry_larger_than_the_wal_can_never_fit(wal: WriteAheadLog, batch: Batch) -> None:
    with pytest.raises(WalFullError, match="can never fit"):
        await wal.append(1, batch(0, payload_size=2 * 1024 * 1024))
    assert wal.stats.appends == 0


async def test_an_entry_larger_than_a_file_gets_a_file_of_its_own(
    config: WalConfig, batch: Batch
) -> None:
    wal = await WriteAheadLog.open(config)
    await wal.append(1, batch(0))
    await wal.append(1, batch(1, payload_size=1000))
    await wal.append(1, batch(2))
    assert wal.stats.files == 3
    await wal.close()
    wal = await WriteAheadLog.open(config)
    assert [b for _, b in summary(wal)] == [batch(0), batch(1, payload_size=1000), batch(2)]
    await wal.close()


async def test_close_syncs_and_refuses_later_appends(config: WalConfig, batch: Batch) -> None:
    wal = await WriteAheadLog.open(config)
    await wal.append(1, batch(0), sync=SyncPolicy.NEVER)
    assert wal.stats.fsyncs == 0
    await wal.close()
    assert wal.stats.fsyncs == 1
    with pytest.raises(WalClosedError, match="closed"):
        await wal.append(1, batch(1))
    with pytest.raises(WalClosedError):
        await wal.append_many([(1, batch(1))])
    await wal.close()  # closing twice is harmless
    await wal.sync()  # nothing left to sync
    wal = await WriteAheadLog.open(config)
    assert summary(wal) == [(1, batch(0))]
    await wal.close()


async def test_a_directory_is_used_by_one_wal_at_a_time(config: WalConfig) -> None:
    wal = await WriteAheadLog.open(config)
    with pytest.raises(WalError, match="already open"):
        await WriteAheadLog.open(config)
    await wal.close()
    again = await WriteAheadLog.open(config)
    await again.close()


async def test_stats_count_appends_and_bytes(wal: WriteAheadLog, batch: Batch) -> None:
    await wal.append_many([(1, batch(0)), (2, batch(0))])
    stats = wal.stats
    assert stats.appends == 2
    assert stats.bytes == 2 * (16 + len(batch(0)))


@pytest.mark.parametrize(
    "changes",
    [
        {"sync_interval_ms": 0},
        {"file_max_bytes": -1},
        {"max_bytes": 1.5},
        {"sync_policy": "sometimes"},
    ],
)
def test_config_is_validated(tmp_path: Path, changes: dict) -> None:
    with pytest.raises(ValueError):
        WalConfig(directory=tmp_path, **changes)


def test_config_accepts_plain_strings(tmp_path: Path) -> None:
    config = WalConfig(directory=str(tmp_path), sync_policy="always")  # type: ignore[arg-type]
    assert config.directory == tmp_path
    assert config.sync_policy is SyncPolicy.ALWAYS
