"""Idempotent producers: a retried batch is stored once and answered with its first offsets."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from streamhouse.broker.log import (
    Acks,
    LogManager,
    OutOfOrderSequenceError,
    PartitionLog,
    ProducerFencedError,
)
from streamhouse.broker.metadata import ProducerPartitionState
from streamhouse.broker.records import RecordBatchError, build_batch

from .conftest import record_values

INT32_MAX = 2**31 - 1


def producer_batch(pid: int, epoch: int, sequence: int, count: int, tag: str) -> bytes:
    """``count`` records ``{tag}-{i}`` with sequences ``sequence .. sequence + count - 1``."""
    values = [f"{tag}-{i}".encode() for i in range(count)]
    return build_batch(values, producer_id=pid, producer_epoch=epoch, base_sequence=sequence)


async def all_values(plog: PartitionLog) -> list[bytes | None]:
    return [value for _, value in record_values(await plog.read(0, max_bytes=1 << 20))]


def duplicates(topic: str) -> float:
    counted = REGISTRY.get_sample_value(
        "streamhouse_idempotent_duplicate_batches_total", {"topic": topic}
    )
    return counted or 0.0


async def new_producer(manager: LogManager) -> tuple[int, int]:
    return await manager.metadata.init_producer()


async def test_retry_returns_original_offsets_and_is_stored_once(manager: LogManager) -> None:
    await manager.create_topic("idem", partitions=1)
    plog = await manager.partition("idem", 0)
    pid, epoch = await new_producer(manager)
    await plog.append([build_batch([b"plain"])])  # offsets 0: not every batch is idempotent
    first = producer_batch(pid, epoch, 0, 3, "a")
    original = await plog.append([first], acks=Acks.ALL)
    retried = await plog.append([first], acks=Acks.ALL)
    assert duplicates("idem") == 1
    assert original.base_offsets == retried.base_offsets == [1]
    assert original.last_offset == retried.last_offset == 3
    assert plog.high_watermark == 4
    assert await all_values(plog) == [b"plain", b"a-0", b"a-1", b"a-2"]
    # The sequence goes on after the retry.
    after = await plog.append([producer_batch(pid, epoch, 3, 2, "b")])
    assert after.base_offsets == [4]
    assert await all_values(plog) == [b"plain", b"a-0", b"a-1", b"a-2", b"b-0", b"b-1"]


async def test_any_of_the_last_five_batches_is_deduplicated(manager: LogManager) -> None:
    await manager.create_topic("inflight", partitions=1)
    plog = await manager.partition("inflight", 0)
    pid, epoch = await new_producer(manager)
    batches = [producer_batch(pid, epoch, 2 * i, 2, f"b{i}") for i in range(6)]
    bases = [(await plog.append([batch])).base_offsets[0] for batch in batches]
    assert bases == [0, 2, 4, 6, 8, 10]
    # Batches 1..5 are the last five: retries of any of them are answered, out of order too.
    for index in (1, 4, 2, 5):
        result = await plog.append([batches[index]])
        assert result.base_offsets == [bases[index]]
    # Batch 0 fell out of the window: it is neither stored again nor answered.
    with pytest.raises(OutOfOrderSequenceError, match="expected"):
        await plog.append([batches[0]])
    assert plog.high_watermark == 12
    assert len(await all_values(plog)) == 12


async def test_gap_is_rejected_and_nothing_of_the_request_is_stored(manager: LogManager) -> None:
    await manager.create_topic("gap", partitions=1)
    plog = await manager.partition("gap", 0)
    pid, epoch = await new_producer(manager)
    await plog.append([producer_batch(pid, epoch, 0, 3, "ok")])
    with pytest.raises(OutOfOrderSequenceError) as caught:
        await plog.append([producer_batch(pid, epoch, 5, 1, "gap")])
    assert "sequence 5" in str(caught.value) and "sequence 3 was expected" in str(caught.value)
    assert (caught.value.expected_sequence, caught.value.received_sequence) == (3, 5)
    # A valid batch in front of the bad one is not stored either: all or nothing.
    with pytest.raises(OutOfOrderSequenceError):
        await plog.append(
            [producer_batch(pid, epoch, 3, 2, "valid"), producer_batch(pid, epoch, 9, 1, "bad")]
        )
    # A rewind that matches no remembered batch is no duplicate.
    with pytest.raises(OutOfOrderSequenceError):
        await plog.append([producer_batch(pid, epoch, 1, 1, "rewind")])
    assert plog.high_watermark == 3
    assert await all_values(plog) == [b"ok-0", b"ok-1", b"ok-2"]
    result = await plog.append([producer_batch(pid, epoch, 3, 2, "next")])
    assert result.base_offsets == [3]


async def test_unknown_producer_must_start_at_sequence_zero(manager: LogManager) -> None:
    await manager.create_topic("fresh", partitions=1)
    plog = await manager.partition("fresh", 0)
    pid, epoch = await new_producer(manager)
    with pytest.raises(OutOfOrderSequenceError, match="sequence 0 was expected"):
        await plog.append([producer_batch(pid, epoch, 7, 1, "late")])
    assert plog.high_watermark == 0


async def test_hostile_producer_fields_are_rejected(manager: LogManager) -> None:
    await manager.create_topic("hostile", partitions=1)
    plog = await manager.partition("hostile", 0)
    no_sequence = build_batch([b"x"], producer_id=42, producer_epoch=0, base_sequence=-1)
    no_epoch = build_batch([b"x"], producer_id=42, producer_epoch=-1, base_sequence=0)
    for batch in (no_sequence, no_epoch):
        with pytest.raises(RecordBatchError, match="producer 42"):
            await plog.append([build_batch([b"innocent"]), batch])
    assert plog.high_watermark == 0


async def test_new_epoch_fences_the_old_one(manager: LogManager) -> None:
    await manager.create_topic("fence", partitions=1)
    plog = await manager.partition("fence", 0)
    pid, old = await new_producer(manager)
    await plog.append([producer_batch(pid, old, 0, 2, "old")])
    _, new = await manager.metadata.init_producer(pid)
    assert new == old + 1
    with pytest.raises(OutOfOrderSequenceError):  # a new epoch starts its sequence at 0
        await plog.append([producer_batch(pid, new, 2, 1, "new")])
    await plog.append([producer_batch(pid, new, 0, 1, "new")])
    with pytest.raises(ProducerFencedError) as caught:
        await plog.append([producer_batch(pid, old, 2, 1, "zombie")])
    message = str(caught.value)
    assert f"producer {pid}" in message and f"epoch {old}" in message and f"epoch {new}" in message
    # Even a retry of the old epoch's own batch is refused now.
    with pytest.raises(ProducerFencedError):
        await plog.append([producer_batch(pid, old, 0, 2, "old")])
    assert await all_values(plog) == [b"old-0", b"old-1", b"new-0"]


async def test_request_mixing_a_duplicate_and_new_batches(manager: LogManager) -> None:
    await manager.create_topic("mixed", partitions=1)
    plog = await manager.partition("mixed", 0)
    pid, epoch = await new_producer(manager)
    other, other_epoch = await new_producer(manager)
    first = producer_batch(pid, epoch, 0, 3, "first")
    await plog.append([first])
    result = await plog.append(
        [
            first,
            producer_batch(pid, epoch, 3, 2, "second"),
            build_batch([b"plain"]),
            producer_batch(other, other_epoch, 0, 1, "other"),
        ]
    )
    assert result.base_offsets == [0, 3, 5, 6]
    assert result.last_offset == 6
    assert plog.high_watermark == 7
    assert await all_values(plog) == [
        b"first-0", b"first-1", b"first-2", b"second-0", b"second-1", b"plain", b"other-0",
    ]  # fmt: skip
    # The same batch twice in one request: the second is the first's duplicate.
    third = producer_batch(pid, epoch, 5, 1, "third")
    twice = await plog.append([third, third])
    assert twice.base_offsets == [7, 7]
    assert plog.high_watermark == 8


async def test_only_duplicates_write_nothing_to_the_wal(manager: LogManager) -> None:
    await manager.create_topic("nowrite", partitions=1)
    plog = await manager.partition("nowrite", 0)
    pid, epoch = await new_producer(manager)
    batch = producer_batch(pid, epoch, 0, 4, "once")
    await plog.append([batch], acks=Acks.ALL)
    assert manager.wal is not None
    before = manager.wal.stats
    result = await plog.append([batch, batch], acks=Acks.ALL)
    assert result.base_offsets == [0, 0] and result.last_offset == 3
    after = manager.wal.stats
    assert (after.appends, after.bytes) == (before.appends, before.bytes)


async def test_state_survives_a_clean_restart_without_the_wal(
    manager: LogManager, reopen, tmp_path
) -> None:
    await manager.create_topic("restart", partitions=1)
    await manager.update_topic_config("restart", {"segment.ms": 10})
    plog = await manager.partition("restart", 0)
    pid, epoch = await new_producer(manager)
    last = producer_batch(pid, epoch, 2, 3, "last")
    await plog.append([producer_batch(pid, epoch, 0, 2, "first")])
    await plog.append([last], acks=Acks.ALL)
    await manager.close()
    stored = await _producer_state(reopen, tmp_path, pid)
    assert stored == ProducerPartitionState(pid, epoch, "restart", 0, 4, 4)
    # A different data dir: no WAL, only the metadata store remembers the producer.
    again = await reopen(data_dir=tmp_path / "elsewhere")
    try:
        plog = await again.partition("restart", 0)
        retried = await plog.append([last])
        assert retried.base_offsets == [2] and retried.last_offset == 4
        with pytest.raises(OutOfOrderSequenceError):
            await plog.append([producer_batch(pid, epoch, 9, 1, "gap")])
        result = await plog.append([producer_batch(pid, epoch, 5, 1, "next")])
        assert result.base_offsets == [5]
        assert await all_values(plog) == [
            b"first-0", b"first-1", b"last-0", b"last-1", b"last-2", b"next-0",
        ]  # fmt: skip
    finally:
        await again.close()


async def _producer_state(reopen, tmp_path, pid: int) -> ProducerPartitionState | None:
    probe = await reopen(data_dir=tmp_path / "probe", agent_id="probe")
    try:
        return await probe.metadata.get_producer_state(pid, "restart", 0)
    finally:
        await probe.close()


async def test_state_is_rebuilt_from_the_wal_after_a_crash(
    manager: LogManager, reopen, log_config
) -> None:
    await manager.create_topic("crash", partitions=1)
    await manager.update_topic_config("crash", {"segment.ms": 3_600_000})
    plog = await manager.partition("crash", 0)
    pid, epoch = await new_producer(manager)
    batches = [producer_batch(pid, epoch, 2 * i, 2, f"b{i}") for i in range(4)]
    for batch in batches:
        await plog.append([batch], acks=Acks.ALL)  # fsynced in the WAL, not in a segment
    # Crash: the loops stop, nothing is sealed or committed, no lease is released. Only the
    # WAL is closed, as the kernel would on process death (it releases the directory lock).
    for task in manager._tasks:
        task.cancel()
    await asyncio.gather(*manager._tasks, return_exceptions=True)
    manager._tasks = []
    assert manager.wal is not None
    await manager.wal.close()
    assert await manager.metadata.get_producer_state(pid, "crash", 0) is None
    assert await manager.metadata.list_segments("crash", 0) == []
    again = await reopen()
    try:
        plog = await again.partition("crash", 0)
        assert plog.high_watermark == 8
        # Every remembered batch, not only the last, is recognised after the replay.
        for index in (3, 1):
            assert (await plog.append([batches[index]])).base_offsets == [2 * index]
        result = await plog.append([producer_batch(pid, epoch, 8, 1, "after")])
        assert result.base_offsets == [8]
        assert len(await all_values(plog)) == 9
    finally:
        await again.close()
        manager.wal = None
        manager._partitions.clear()


async def test_sequence_wraps_after_int32_max(manager: LogManager, reopen, tmp_path) -> None:
    await manager.create_topic("wrap", partitions=1)
    pid, epoch = await new_producer(manager)
    # A producer whose last batch (3 records) ended at the largest sequence, at offset 2.
    await manager.metadata.put_producer_state(
        ProducerPartitionState(pid, epoch, "wrap", 0, INT32_MAX, 2)
    )
    plog = await manager.partition("wrap", 0)
    retry = await plog.append([producer_batch(pid, epoch, INT32_MAX - 2, 3, "retry")])
    assert retry.base_offsets == [0] and plog.high_watermark == 0  # answered from the store
    result = await plog.append([producer_batch(pid, epoch, 0, 2, "wrapped")])
    assert result.base_offsets == [0]
    with pytest.raises(OutOfOrderSequenceError, match="sequence 2 was expected"):
        await plog.append([producer_batch(pid, epoch, 3, 1, "gap")])
    # A batch that itself crosses the end of the sequence space.
    other, other_epoch = await new_producer(manager)
    await manager.metadata.put_producer_state(
        ProducerPartitionState(other, other_epoch, "wrap", 0, INT32_MAX - 3, 1)
    )
    crossing = producer_batch(other, other_epoch, INT32_MAX - 2, 5, "crossing")
    assert (await plog.append([crossing])).base_offsets == [2]
    assert (await plog.append([producer_batch(other, other_epoch, 2, 1, "on")])).base_offsets == [7]
