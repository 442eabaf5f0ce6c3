"""Per-partition batching for the producer: records collect into batches, batches queue to send.

A partition has at most one *open* batch (still taking records) and a queue of *closed* ones
(encoded RecordBatch bytes waiting for the sender). A batch closes when it reaches
``batch_bytes``, when it is ``linger`` old, or on flush; encoding happens once, at close, with
one ``build_batch`` call for all its records. Retries put the very same bytes back at their
place in the queue, so an idempotent producer's retry is recognised by the server.

Ordering rule: after a failure a partition sends nothing until all of its requests in flight
have come back; then it resends from the oldest unacknowledged batch. With idempotence the
server would reject anything else as out of order, and without it this keeps the order too.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterator, Sequence

import crc32c
from streamhouse.broker.client.models import RecordMetadata
from streamhouse.broker.records import Compression, build_batch
from streamhouse.broker.records.builder import MAX_RECORD_OVERHEAD
from streamhouse.broker.records.header import ATTRIBUTES_POS, CRC_POS

SEQUENCE_POS = 53  # baseSequence in the 61-byte header (inside the CRC)
SEQUENCE_SPACE = 2**31
MAX_IN_FLIGHT_BATCHES = 5  # the server remembers this many batches per idempotent producer
HEADER_OVERHEAD = 10  # per header: key length, value length varints (upper bound)

Header = tuple[str, bytes | None]


def record_size(value: bytes | None, key: bytes | None, headers: Sequence[Header] | None) -> int:
    """An upper bound on a record's encoded size, the unit of ``batch_bytes`` and the buffer."""
    size = MAX_RECORD_OVERHEAD + (len(value) if value else 0) + (len(key) if key else 0)
    if headers:
        for name, payload in headers:
            size += HEADER_OVERHEAD + len(name) * 4 + (len(payload) if payload else 0)
    return size


def with_sequence(payload: bytes, sequence: int) -> bytes:
    """The batch with another base sequence (and its CRC recomputed)."""
    out = bytearray(payload)
    out[SEQUENCE_POS : SEQUENCE_POS + 4] = sequence.to_bytes(4, "big", signed=True)
    crc = crc32c.crc32c(memoryview(out)[ATTRIBUTES_POS:])
    out[CRC_POS : CRC_POS + 4] = crc.to_bytes(4, "big")
    return bytes(out)


def _mark_retrieved(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


class ProducerBatch:
    """One encoded batch of one partition and the futures waiting for its acknowledgement."""

    __slots__ = (
        "alone",
        "attempts",
        "base_sequence",
        "done",
        "futures",
        "index",
        "on_finished",
        "partition",
        "payload",
        "record_count",
        "size",
        "timestamps",
        "topic",
    )

    def __init__(
        self,
        topic: str,
        partition: int,
        index: int,
        payload: bytes,
        record_count: int,
        size: int,
        base_sequence: int = -1,
        futures: list[asyncio.Future] | None = None,
        timestamps: list[int] | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.index = index
        self.payload = payload
        self.record_count = record_count
        self.size = size
        self.base_sequence = base_sequence
        self.futures = futures
        self.timestamps = timestamps
        self.attempts = 0
        self.alone = False  # resend in a request of its own (to find out which batch is bad)
        self.on_finished: Callable[[ProducerBatch], None] | None = None
        self.done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.done.add_done_callback(_mark_retrieved)

    def complete(self, base_offset: int) -> None:
        """Resolves the records with their offsets. The timestamp is the one the record was
        sent with: topics keep producer (create) time, and the server's append time in the
        response is not a record timestamp."""
        if self.done.done():
            return
        if self.futures is not None and self.timestamps is not None:
            topic, partition = self.topic, self.partition
            pairs = zip(self.futures, self.timestamps, strict=True)
            for i, (future, timestamp) in enumerate(pairs):
                if not future.done():
                    future.set_result(RecordMetadata(topic, partition, base_offset + i, timestamp))
        self.done.set_result(base_offset)
        self._finish()

    def fail(self, error: BaseException) -> None:
        if self.done.done():
            return
        for future in self.futures or ():
            if not future.done():
                future.set_exception(error)
        self.done.set_exception(error)
        self._finish()

    def _finish(self) -> None:
        if self.on_finished is not None:
            self.on_finished(self)


class OpenBatch:
    """Records of one partition not yet encoded."""

    __slots__ = (
        "created",
        "futures",
        "has_headers",
        "headers",
        "keys",
        "size",
        "timestamps",
        "values",
    )

    def __init__(self, created: float) -> None:
        self.created = created
        self.values: list[bytes | None] = []
        self.keys: list[bytes | None] = []
        self.timestamps: list[int] = []
        self.headers: list[Sequence[Header]] = []
        self.futures: list[asyncio.Future[RecordMetadata]] = []
        self.has_headers = False
        self.size = 0


class PartitionQueue:
    """The batches of one partition, in order, and what the sender may do with them."""

    __slots__ = (
        "acked_sequence",
        "in_flight",
        "next_index",
        "next_sequence",
        "open",
        "partition",
        "ready",
        "resume_at",
        "retrying",
        "topic",
    )

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.open: OpenBatch | None = None
        self.ready: collections.deque[ProducerBatch] = collections.deque()
        self.in_flight = 0  # batches sent and not answered
        self.next_index = 0
        self.next_sequence = 0
        self.acked_sequence = 0  # the sequence the server expects next
        self.resume_at = 0.0
        self.retrying = False

    @property
    def next_goes_alone(self) -> bool:
        return bool(self.ready) and self.ready[0].alone

    def can_send(self, now: float, idempotent: bool) -> bool:
        if not self.ready or now < self.resume_at:
            return False
        if self.retrying and self.in_flight:
            return False  # wait for everything in flight before resending in order
        return not (idempotent and self.in_flight >= MAX_IN_FLIGHT_BATCHES)

    def take(self, max_bytes: int, idempotent: bool) -> list[ProducerBatch]:
        """Pops the next batches to send (at least one, in order, up to ``max_bytes``)."""
        if self.retrying:
            self.retrying = False
            if idempotent:
                self._renumber()
        limit = MAX_IN_FLIGHT_BATCHES - self.in_flight if idempotent else len(self.ready)
        taken: list[ProducerBatch] = []
        size = 0
        while self.ready and len(taken) < limit:
            batch = self.ready[0]
            if taken and (batch.alone or size + len(batch.payload) > max_bytes):
                break
            taken.append(self.ready.popleft())
            size += len(batch.payload)
            if batch.alone:
                break
        self.in_flight += len(taken)
        return taken

    def put_back(self, batch: ProducerBatch) -> None:
        """Returns a failed batch to its place (batches come back in any order)."""
        self.ready.append(batch)
        if len(self.ready) > 1 and self.ready[-2].index > batch.index:
            self.ready = collections.deque(sorted(self.ready, key=lambda b: b.index))

    def _renumber(self) -> None:
        """Makes the queued sequences follow the last acknowledged one again.

        A no-op after ordinary retries (the bytes stay identical, so the server can spot
        duplicates); it changes something only after a batch failed for good and left a gap.
        """
        expected = self.acked_sequence
        for batch in self.ready:
            if batch.base_sequence != expected:
                batch.payload = with_sequence(batch.payload, expected)
                batch.base_sequence = expected
            expected = (expected + batch.record_count) % SEQUENCE_SPACE
        self.next_sequence = expected


class RecordAccumulator:
    """All partitions' queues of one producer.

    Args:
        batch_bytes: a batch closes once its records' size estimate reaches this.
        linger_s: an open batch closes this long after its first record.
        compression: codec of every batch.
        on_close: told ``(topic, partition)`` whenever a batch closes (sticky partitioner).
        wakeup: called when the sender has something new to do.
        release: given back the buffer bytes of every batch that is finished (acknowledged or
            failed for good).
    """

    def __init__(
        self,
        batch_bytes: int,
        linger_s: float,
        compression: Compression,
        on_close: Callable[[str, int], None],
        wakeup: Callable[[], None],
        release: Callable[[int], None],
    ) -> None:
        self.batch_bytes = batch_bytes
        self.linger_s = linger_s
        self.compression = compression
        self.on_close = on_close
        self.wakeup = wakeup
        self.release = release
        self.producer_id = -1
        self.producer_epoch = -1
        self.queues: dict[tuple[str, int], PartitionQueue] = {}
        self.incomplete: set[ProducerBatch] = set()
        self._open: dict[tuple[str, int], PartitionQueue] = {}  # queues with an open batch
        self._loop = asyncio.get_running_loop()

    @property
    def idempotent(self) -> bool:
        return self.producer_id >= 0

    def queue(self, topic: str, partition: int) -> PartitionQueue:
        key = (topic, partition)
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = PartitionQueue(topic, partition)
        return queue

    # ----------------------------------------------------------------------------- adding
    def append(
        self,
        topic: str,
        partition: int,
        value: bytes | None,
        key: bytes | None,
        headers: Sequence[Header] | None,
        timestamp_ms: int,
        size: int,
    ) -> asyncio.Future[RecordMetadata]:
        """Adds one record to the partition's open batch; the future resolves on its ack."""
        queue = self.queue(topic, partition)
        batch = queue.open
        if batch is not None and batch.size + size > self.batch_bytes:
            self._close(queue)
            batch = None
        if batch is None:
            batch = queue.open = OpenBatch(self._loop.time())
            self._open[(topic, partition)] = queue
            self.wakeup()  # the sender must learn this batch's linger deadline
        future: asyncio.Future[RecordMetadata] = self._loop.create_future()
        batch.values.append(value)
        batch.keys.append(key)
        batch.timestamps.append(timestamp_ms)
        batch.headers.append(headers or ())
        batch.has_headers = batch.has_headers or bool(headers)
        batch.futures.append(future)
        batch.size += size
        if batch.size >= self.batch_bytes:
            self._close(queue)
        return future

    def append_built(
        self,
        topic: str,
        partition: int,
        build: Callable[[int, int, int], bytes],
        record_count: int,
        size: int,
    ) -> ProducerBatch:
        """Queues a batch encoded by the caller: ``build(producer_id, epoch, base_sequence)``.

        The partition's open batch is closed first so the new records follow the older ones.
        """
        queue = self.queue(topic, partition)
        if queue.open is not None:
            self._close(queue)
        sequence = self._take_sequence(queue, record_count)
        payload = build(self.producer_id, self.producer_epoch, sequence)
        batch = ProducerBatch(
            topic, partition, queue.next_index, payload, record_count, size, sequence
        )
        self._enqueue(queue, batch)
        return batch

    # ---------------------------------------------------------------------------- closing
    def close_expired(self, now: float) -> float | None:
        """Closes the batches older than linger; returns the next linger deadline, if any."""
        deadline = None
        for queue in list(self._open.values()):
            assert queue.open is not None
            expires = queue.open.created + self.linger_s
            if expires <= now:
                self._close(queue)
            elif deadline is None or expires < deadline:
                deadline = expires
        return deadline

    def close_all(self) -> None:
        for queue in list(self._open.values()):
            self._close(queue)

    def _close(self, queue: PartitionQueue) -> None:
        records = queue.open
        assert records is not None
        queue.open = None
        del self._open[(queue.topic, queue.partition)]
        count = len(records.values)
        sequence = self._take_sequence(queue, count)
        try:
            payload = build_batch(
                records.values,
                records.keys,
                records.timestamps,
                records.headers if records.has_headers else None,
                compression=self.compression,
                producer_id=self.producer_id,
                producer_epoch=self.producer_epoch,
                base_sequence=sequence,
            )
        except Exception as exc:  # e.g. a header value of the wrong type slipped through
            for future in records.futures:
                if not future.done():
                    future.set_exception(exc)
            if self.idempotent:
                queue.next_sequence = sequence  # nothing was queued: give the numbers back
            self.release(records.size)
            return
        batch = ProducerBatch(
            queue.topic,
            queue.partition,
            queue.next_index,
            payload,
            count,
            records.size,
            sequence,
            records.futures,
            records.timestamps,
        )
        self._enqueue(queue, batch)

    def _take_sequence(self, queue: PartitionQueue, count: int) -> int:
        if not self.idempotent:
            return -1
        sequence = queue.next_sequence
        queue.next_sequence = (sequence + count) % SEQUENCE_SPACE
        return sequence

    def _enqueue(self, queue: PartitionQueue, batch: ProducerBatch) -> None:
        queue.next_index += 1
        queue.ready.append(batch)
        self.incomplete.add(batch)
        batch.on_finished = self._finished
        self.on_close(queue.topic, queue.partition)
        self.wakeup()

    def _finished(self, batch: ProducerBatch) -> None:
        self.incomplete.discard(batch)
        self.release(batch.size)

    # ---------------------------------------------------------------------------- sending
    def sendable(self, now: float) -> Iterator[PartitionQueue]:
        idempotent = self.idempotent
        for queue in self.queues.values():
            if queue.can_send(now, idempotent):
                yield queue

    def next_resume(self, now: float) -> float | None:
        """The earliest time a partition waiting out a retry backoff may send again."""
        times = [q.resume_at for q in self.queues.values() if q.ready and q.resume_at > now]
        return min(times) if times else None

    def has_unsent(self) -> bool:
        return bool(self._open) or any(q.ready for q in self.queues.values())

    def fail_all(self, error: BaseException) -> None:
        """Fails every record not yet acknowledged (the producer cannot go on)."""
        self.close_all()
        for batch in list(self.incomplete):
            batch.fail(error)
        for queue in self.queues.values():
            queue.ready.clear()
