"""Batching rules of the producer: when batches close, sequences, and ordering across retries."""

from __future__ import annotations

import pytest
from streamhouse.broker.client.accumulator import (
    MAX_IN_FLIGHT_BATCHES,
    RecordAccumulator,
    record_size,
    with_sequence,
)
from streamhouse.broker.records import (
    Compression,
    build_batch,
    iter_records,
    parse_header,
    validate_batch,
)


class Harness:
    def __init__(self, batch_bytes: int = 1000, linger_s: float = 0.005, idempotent=False):
        self.closed: list[tuple[str, int]] = []
        self.released = 0
        self.wakeups = 0
        self.acc = RecordAccumulator(
            batch_bytes,
            linger_s,
            Compression.NONE,
            on_close=lambda t, p: self.closed.append((t, p)),
            wakeup=self.wake,
            release=self.release,
        )
        if idempotent:
            self.acc.producer_id, self.acc.producer_epoch = 42, 3

    def wake(self) -> None:
        self.wakeups += 1

    def release(self, size: int) -> None:
        self.released += size

    def add(self, partition: int, value: bytes, key: bytes | None = None, headers=None):
        size = record_size(value, key, headers)
        return self.acc.append("t", partition, value, key, headers, 1000, size), size


async def test_batch_closes_at_batch_bytes_and_keeps_record_order() -> None:
    h = Harness(batch_bytes=200)
    futures = [h.add(0, bytes([i]) * 50)[0] for i in range(7)]
    queue = h.acc.queue("t", 0)
    # 71 bytes a record: two fit (142), the third would pass 200 -> a new batch.
    assert [b.record_count for b in queue.ready] == [2, 2, 2]
    assert queue.open is not None and len(queue.open.values) == 1
    assert h.closed == [("t", 0)] * 3
    values = [r.value for b in queue.ready for r in iter_records(b.payload)]
    assert values == [bytes([i]) * 50 for i in range(6)]
    assert all(not f.done() for f in futures)


async def test_an_oversized_record_gets_a_batch_of_its_own() -> None:
    h = Harness(batch_bytes=100)
    h.add(0, b"a")
    h.add(0, b"x" * 500)
    queue = h.acc.queue("t", 0)
    assert [b.record_count for b in queue.ready] == [1, 1]
    assert queue.open is None


async def test_linger_closes_old_batches_and_reports_the_next_deadline() -> None:
    h = Harness(linger_s=0.5)
    h.add(0, b"a")
    created = h.acc.queue("t", 0).open.created
    assert h.acc.close_expired(created + 0.1) == pytest.approx(created + 0.5)
    assert not h.acc.queue("t", 0).ready
    assert h.acc.close_expired(created + 0.5) is None
    assert h.acc.queue("t", 0).ready[0].record_count == 1


async def test_completion_resolves_futures_with_dense_offsets_and_releases_memory() -> None:
    h = Harness()
    pending = [h.add(1, b"v%d" % i, key=b"k", headers=[("h", b"x")]) for i in range(3)]
    h.acc.close_all()
    (batch,) = h.acc.queue("t", 1).ready
    assert batch in h.acc.incomplete
    batch.complete(500)
    metas = [f.result() for f, _ in pending]
    assert [(m.topic, m.partition, m.offset, m.timestamp_ms) for m in metas] == [
        ("t", 1, 500, 1000),
        ("t", 1, 501, 1000),
        ("t", 1, 502, 1000),
    ]
    await batch.done
    assert h.released == sum(size for _, size in pending)
    assert not h.acc.incomplete


async def test_failure_fails_every_record_of_the_batch() -> None:
    h = Harness()
    futures = [h.add(0, b"v")[0] for _ in range(2)]
    h.acc.close_all()
    h.acc.queue("t", 0).ready[0].fail(RuntimeError("boom"))
    for future in futures:
        with pytest.raises(RuntimeError, match="boom"):
            future.result()


async def test_idempotent_batches_carry_consecutive_sequences_per_partition() -> None:
    h = Harness(batch_bytes=60, idempotent=True)
    for _ in range(5):
        h.add(0, b"x" * 30)  # one record per batch (51 bytes each)
        h.add(1, b"y" * 30)
    h.acc.close_all()
    for partition in (0, 1):
        headers = [parse_header(b.payload) for b in h.acc.queue("t", partition).ready]
        assert [x.base_sequence for x in headers] == [0, 1, 2, 3, 4]
        assert {(x.producer_id, x.producer_epoch) for x in headers} == {(42, 3)}


async def test_prebuilt_batches_follow_the_open_batch_in_order() -> None:
    h = Harness(idempotent=True)
    h.add(0, b"first")

    def build(producer_id: int, epoch: int, sequence: int) -> bytes:
        return build_batch(
            [b"a", b"b"], producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence
        )

    bulk = h.acc.append_built("t", 0, build, 2, 50)
    queue = h.acc.queue("t", 0)
    assert [b.record_count for b in queue.ready] == [1, 2]  # the open batch closed first
    assert parse_header(bulk.payload).base_sequence == 1
    assert queue.next_sequence == 3


async def test_with_sequence_rewrites_the_header_and_keeps_the_crc_valid() -> None:
    payload = build_batch([b"a", b"b"], producer_id=7, producer_epoch=0, base_sequence=5)
    rewritten = with_sequence(payload, 2**31 - 1)
    header = validate_batch(rewritten)  # raises on a CRC mismatch
    assert header.base_sequence == 2**31 - 1
    assert rewritten[61:] == payload[61:]


async def test_a_failed_partition_waits_for_its_in_flight_batches_then_resends_in_order() -> None:
    h = Harness(batch_bytes=30, idempotent=True)
    for i in range(4):
        h.add(0, bytes([i]) * 10)
    h.acc.close_all()
    queue = h.acc.queue("t", 0)
    sent = queue.take(10**9, idempotent=True)
    assert [b.base_sequence for b in sent] == [0, 1, 2, 3]
    assert queue.in_flight == 4
    # Batch 1 fails and comes back first; the partition must not resend while 2 and 3 fly.
    queue.in_flight -= 1
    queue.put_back(sent[1])
    queue.retrying = True
    assert not queue.can_send(0.0, idempotent=True)
    queue.in_flight -= 2
    queue.put_back(sent[3])
    queue.put_back(sent[2])
    sent[0].complete(0)
    queue.in_flight -= 1
    queue.acked_sequence = 1
    assert queue.can_send(0.0, idempotent=True)
    resent = queue.take(10**9, idempotent=True)
    assert resent == sent[1:]  # oldest first, the very same bytes
    assert [parse_header(b.payload).base_sequence for b in resent] == [1, 2, 3]


async def test_sequences_close_the_gap_a_dropped_batch_leaves() -> None:
    h = Harness(batch_bytes=30, idempotent=True)
    for i in range(3):
        h.add(0, bytes([i]) * 10)
    h.acc.close_all()
    queue = h.acc.queue("t", 0)
    first, second, third = queue.take(10**9, idempotent=True)
    first.complete(0)
    queue.acked_sequence = 1
    second.fail(ValueError("too large"))  # dropped for good: sequence 1 is never stored
    queue.put_back(third)
    queue.in_flight = 0
    queue.retrying = True
    (again,) = queue.take(10**9, idempotent=True)
    assert again is third
    assert validate_batch(again.payload).base_sequence == 1
    assert queue.next_sequence == 2


async def test_idempotent_partitions_keep_at_most_five_batches_in_flight() -> None:
    h = Harness(batch_bytes=30, idempotent=True)
    for i in range(8):
        h.add(0, bytes([i]) * 10)
    h.acc.close_all()
    queue = h.acc.queue("t", 0)
    assert len(queue.take(10**9, idempotent=True)) == MAX_IN_FLIGHT_BATCHES
    assert not queue.can_send(0.0, idempotent=True)
    queue.in_flight -= 2
    assert len(queue.take(10**9, idempotent=True)) == 2


async def test_take_respects_the_request_size_but_always_sends_one() -> None:
    h = Harness(batch_bytes=30)
    for i in range(4):
        h.add(0, bytes([i]) * 10)
    h.acc.close_all()
    queue = h.acc.queue("t", 0)
    size = len(queue.ready[0].payload)
    assert len(queue.take(1, idempotent=False)) == 1
    assert len(queue.take(2 * size, idempotent=False)) == 2


async def test_backoff_delays_a_partition() -> None:
    h = Harness()
    h.add(0, b"v")
    h.acc.close_all()
    queue = h.acc.queue("t", 0)
    queue.resume_at = 10.0
    assert list(h.acc.sendable(9.0)) == []
    assert h.acc.next_resume(9.0) == 10.0
    assert list(h.acc.sendable(10.0)) == [queue]


async def test_fail_all_fails_open_and_queued_records() -> None:
    h = Harness(batch_bytes=30)
    futures = [h.add(p, b"x" * 10)[0] for p in (0, 0, 1)]
    h.acc.fail_all(RuntimeError("fenced"))
    for future in futures:
        with pytest.raises(RuntimeError, match="fenced"):
            future.result()
    assert not h.acc.has_unsent() and not h.acc.incomplete


async def test_a_record_that_cannot_be_encoded_fails_only_its_batch() -> None:
    h = Harness(idempotent=True)
    size = 100
    # A header value that is not bytes slipped past the producer's checks.
    future = h.acc.append("t", 0, b"v", None, [("h", 5)], 1000, size)
    h.acc.close_all()
    with pytest.raises(TypeError):
        future.result()
    assert h.released == size
    assert h.acc.queue("t", 0).next_sequence == 0  # the sequence was not used up


async def test_a_batch_marked_alone_is_taken_by_itself() -> None:
    h = Harness(batch_bytes=30)
    for i in range(4):
        h.add(0, bytes([i]) * 10)
    h.acc.close_all()
    queue = h.acc.queue("t", 0)
    queue.ready[1].alone = True
    assert [b.index for b in queue.take(10**9, idempotent=False)] == [0]
    assert queue.next_goes_alone
    assert [b.index for b in queue.take(10**9, idempotent=False)] == [1]
    assert [b.index for b in queue.take(10**9, idempotent=False)] == [2, 3]
