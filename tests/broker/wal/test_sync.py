"""Durability policies: when appends are fsynced, and how concurrent appends share fsyncs."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import pytest
from streamhouse.broker.wal import SyncPolicy, WalConfig, WalError, WriteAheadLog
from streamhouse.broker.wal.group_commit import GroupCommit

Batch = Callable[..., bytes]


def with_policy(config: WalConfig, policy: SyncPolicy) -> WalConfig:
    return dataclasses.replace(config, sync_policy=policy, file_max_bytes=1024 * 1024)


async def test_concurrent_always_appends_share_fsyncs(config: WalConfig, batch: Batch) -> None:
    wal = await WriteAheadLog.open(with_policy(config, SyncPolicy.ALWAYS))
    try:
        for round_no in range(3):
            await asyncio.gather(*(wal.append(i, batch(round_no)) for i in range(16)))
        stats = wal.stats
        assert stats.appends == 48
        assert 1 <= stats.fsyncs <= 6, stats  # one or two rounds per burst, not one per append
        assert stats.fsyncs < stats.appends
        assert stats.fsync_seconds_total >= stats.fsync_seconds_max > 0
    finally:
        await wal.close()


async def test_always_returns_only_after_its_fsync(config: WalConfig, batch: Batch) -> None:
    wal = await WriteAheadLog.open(with_policy(config, SyncPolicy.ALWAYS))
    try:
        for i in range(5):
            await wal.append(1, batch(i))
            assert wal.stats.fsyncs == i + 1  # sequential appends: nothing to share
    finally:
        await wal.close()


async def test_interval_syncs_in_the_background(config: WalConfig, batch: Batch) -> None:
    wal = await WriteAheadLog.open(with_policy(config, SyncPolicy.INTERVAL))  # 20 ms
    try:
        started = time.monotonic()
        await wal.append(1, batch(0))
        assert wal.stats.fsyncs == 0  # the append did not wait for one
        while wal.stats.fsyncs == 0 and time.monotonic() - started < 2:
            await asyncio.sleep(0.005)
        assert wal.stats.fsyncs == 1
        assert time.monotonic() - started < 0.5  # a few 20 ms intervals (slack for a busy disk)
        await asyncio.sleep(0.1)
        assert wal.stats.fsyncs == 1  # nothing new written: no more fsyncs
    finally:
        await wal.close()


async def test_never_does_not_fsync_on_append(config: WalConfig, batch: Batch) -> None:
    wal = await WriteAheadLog.open(with_policy(config, SyncPolicy.NEVER))
    try:
        for i in range(20):
            await wal.append(1, batch(i))
        await asyncio.sleep(0.1)  # five sync intervals
        assert wal.stats.fsyncs == 0
        await wal.sync()  # but an explicit sync covers it
        assert wal.stats.fsyncs == 1
    finally:
        await wal.close()


@pytest.mark.parametrize(
    ("default", "override", "fsyncs_on_return"),
    [
        (SyncPolicy.NEVER, SyncPolicy.ALWAYS, 1),
        (SyncPolicy.ALWAYS, SyncPolicy.NEVER, 0),
        (SyncPolicy.ALWAYS, SyncPolicy.INTERVAL, 0),
        (SyncPolicy.NEVER, "always", 1),
    ],
)
async def test_per_call_policy_overrides_the_default(
    config: WalConfig,
    batch: Batch,
    default: SyncPolicy,
    override: SyncPolicy,
    fsyncs_on_return: int,
) -> None:
    wal = await WriteAheadLog.open(with_policy(config, default))
    try:
        await wal.append(1, batch(0), sync=override)
        assert wal.stats.fsyncs == fsyncs_on_return
        await wal.append_many([(1, batch(1))], sync=override)
        assert wal.stats.fsyncs == 2 * fsyncs_on_return
    finally:
        await wal.close()


async def test_interval_does_not_sync_never_appends(config: WalConfig, batch: Batch) -> None:
    """A NEVER topic next to an INTERVAL default must not get fsyncs it did not ask for."""
    wal = await WriteAheadLog.open(with_policy(config, SyncPolicy.INTERVAL))
    try:
        await wal.append(1, batch(0), sync=SyncPolicy.NEVER)
        await asyncio.sleep(0.1)
        assert wal.stats.fsyncs == 0
    finally:
        await wal.close()


async def test_sync_covers_deleted_files(config: WalConfig, batch: Batch) -> None:
    wal = await WriteAheadLog.open(config)  # NEVER, 3 entries per file
    try:
        for i in range(4):
            await wal.append(1, batch(i))
        await wal.sync()
        fsyncs = wal.stats.fsyncs
        wal.mark_committed(1, 3)  # deletes the first file
        await wal.sync()  # the directory fsync makes the deletion durable
        assert wal.stats.fsyncs == fsyncs + 1
    finally:
        await wal.close()


async def test_always_append_across_a_roll_is_durable_in_both_files(
    config: WalConfig, batch: Batch
) -> None:
    """Entries written NEVER to an old file are fsynced by a later ALWAYS in a new file."""
    wal = await WriteAheadLog.open(config)  # NEVER, 3 entries per file
    try:
        for i in range(3):
            await wal.append(1, batch(i))
        await wal.append(1, batch(3), sync=SyncPolicy.ALWAYS)  # rolls, then fsyncs
        assert wal.stats.fsyncs == 1
        assert wal.stats.files == 2
        await wal.sync()
        assert wal.stats.fsyncs == 1  # nothing was left unsynced
    finally:
        await wal.close()


# ----------------------------------------------------------------------------- group commit


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_group_commit_batches_waiters_behind_a_running_round() -> None:
    rounds: list[int] = []
    gate = asyncio.Event()

    async def run_round(target: int) -> None:
        rounds.append(target)
        await gate.wait()

    commit = GroupCommit(run_round)
    commit.written = 10
    first = asyncio.create_task(commit.wait_synced(10))
    await settle()
    assert rounds == [10]
    later = []
    for position in (11, 12, 13):  # written while the first round runs
        commit.written = position
        later.append(asyncio.create_task(commit.wait_synced(position)))
    await settle()
    assert not first.done()
    gate.set()
    await asyncio.gather(first, *later)
    assert rounds == [10, 13]  # one more round for all three
    assert commit.synced == 13 and not commit.in_flight


async def test_group_commit_failure_reaches_every_waiter_and_later_call() -> None:
    async def run_round(target: int) -> None:
        raise OSError(5, "Input/output error")

    commit = GroupCommit(run_round)
    commit.written = 3
    results = await asyncio.gather(
        commit.wait_synced(1), commit.wait_synced(3), return_exceptions=True
    )
    assert all(isinstance(r, WalError) and "Input/output error" in str(r) for r in results)
    with pytest.raises(WalError, match="refuses further appends"):
        await commit.wait_synced(3)


async def test_cancelled_waiter_does_not_break_the_round() -> None:
    gate = asyncio.Event()

    async def run_round(target: int) -> None:
        await gate.wait()

    commit = GroupCommit(run_round)
    commit.written = 5
    doomed = asyncio.create_task(commit.wait_synced(5))
    kept = asyncio.create_task(commit.wait_synced(5))
    await settle()
    doomed.cancel()
    gate.set()
    await kept
    assert doomed.cancelled()
    assert commit.synced == 5
