"""The asyncio producer: partition, batch, send to leaders, retry, and resolve futures.

``send`` is the record-at-a-time API of every Kafka client; ``send_many`` is the bulk path
that partitions and encodes a whole column of records with vectorised code and never touches
a record in Python. Both feed the same per-partition queues, so ordering, retries and
idempotence behave the same.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from streamhouse.broker.client.accumulator import (
    HEADER_OVERHEAD,
    Header,
    RecordAccumulator,
    record_size,
)
from streamhouse.broker.client.channels import Channels
from streamhouse.broker.client.cluster import Cluster
from streamhouse.broker.client.errors import NotFoundError, StreamHouseError
from streamhouse.broker.client.models import BulkSendResult, RecordMetadata
from streamhouse.broker.client.options import (
    check_positive,
    parse_acks,
    parse_compression,
    parse_servers,
)
from streamhouse.broker.client.partitioner import (
    StickyPartitioner,
    binary_array,
    partition_for_key,
    partitions_for_keys,
)
from streamhouse.broker.client.retry import RetryPolicy
from streamhouse.broker.client.sender import Sender
from streamhouse.broker.records import Compression, build_batch
from streamhouse.broker.records.builder import MAX_RECORD_OVERHEAD
from streamhouse.broker.rpc.v1 import broker_pb2 as pb

MiB = 1024 * 1024
_BYTES = (bytes, bytearray, memoryview)


class AsyncProducer:
    """Sends records to StreamHouse topics (asyncio).

    Args:
        servers: ``host:port`` of one or more agents (comma-separated) to bootstrap from.
        acks: "leader" (1), "all" (-1: durable before the ack) or "none" (0).
        linger_ms: how long a batch waits for more records before it is sent.
        batch_bytes: a partition's batch is sent once its records reach this size.
        compression: "none", "gzip", "snappy", "lz4" or "zstd", applied per batch.
        enable_idempotence: stamp batches with a producer id and sequences so the server
            drops retried duplicates; ordering per partition then holds across retries.
        retries, retry_backoff_ms, retry_backoff_max_ms: how often and how patiently
            retryable failures (leader moved, server busy or restarting) are retried.
        request_timeout_ms: how long a produce request may go unanswered.
        max_in_flight: produce requests outstanding per agent.
        max_buffer_bytes: ``send`` waits while this much is unacknowledged.
    """

    def __init__(
        self,
        servers: str = "127.0.0.1:50051",
        *,
        acks: str | int = "leader",
        linger_ms: int = 5,
        batch_bytes: int = 1_000_000,
        compression: str = "none",
        enable_idempotence: bool = False,
        retries: int = 5,
        retry_backoff_ms: int = 100,
        retry_backoff_max_ms: int = 2000,
        request_timeout_ms: int = 30_000,
        max_in_flight: int = 5,
        max_buffer_bytes: int = 64 * MiB,
    ) -> None:
        self.servers = parse_servers(servers)
        self._acks = parse_acks(acks)
        self._linger_s = check_positive("linger_ms", linger_ms, zero_ok=True) / 1000
        self._batch_bytes = check_positive("batch_bytes", batch_bytes)
        self._compression: Compression = parse_compression(compression)
        self._idempotence = bool(enable_idempotence)
        self._retry = RetryPolicy(
            check_positive("retries", retries, zero_ok=True),
            check_positive("retry_backoff_ms", retry_backoff_ms, zero_ok=True),
            check_positive("retry_backoff_max_ms", retry_backoff_max_ms, zero_ok=True),
        )
        self._request_timeout_s = check_positive("request_timeout_ms", request_timeout_ms) / 1000
        self._max_in_flight = check_positive("max_in_flight", max_in_flight)
        self._max_buffer_bytes = check_positive("max_buffer_bytes", max_buffer_bytes)
        self._started = False
        self._closed = False
        self._start_lock: asyncio.Lock | None = None
        self._sticky = StickyPartitioner()

    # --------------------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Connects (and with idempotence, obtains a producer id). Called by the first send."""
        if self._started:
            return
        if self._closed:
            raise StreamHouseError("the producer is closed")
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started:
                return
            from streamhouse.broker.client.memory import BufferPool

            self._channels = Channels(
                reconnect_backoff_ms=self._retry.backoff_ms,
                max_reconnect_backoff_ms=self._retry.max_backoff_ms,
            )
            self._cluster = Cluster(
                self._channels, self.servers, self._retry, self._request_timeout_s
            )
            self._memory = BufferPool(self._max_buffer_bytes, on_exhausted=self._send_lingering)
            self._acc = RecordAccumulator(
                self._batch_bytes,
                self._linger_s,
                self._compression,
                on_close=self._batch_closed,
                wakeup=lambda: self._sender.wakeup(),
                release=self._memory.release,
            )
            self._sender = Sender(
                self._acc,
                self._cluster,
                self._channels,
                acks=self._acks,
                retry=self._retry,
                request_timeout_s=self._request_timeout_s,
                max_in_flight=self._max_in_flight,
                max_request_bytes=max(8 * MiB, 4 * self._batch_bytes),
            )
            if self._idempotence:
                try:
                    response = await self._retry.call(
                        lambda: self._cluster.call_any(
                            "produce", "InitProducer", pb.InitProducerRequest()
                        )
                    )
                except BaseException:
                    await self._channels.close()
                    raise
                self._acc.producer_id = response.producer_id
                self._acc.producer_epoch = response.producer_epoch
            self._sender.start()
            self._started = True

    async def __aenter__(self) -> AsyncProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def producer_id(self) -> int:
        """The idempotent producer id (-1 without idempotence or before start)."""
        return self._acc.producer_id if self._started else -1

    @property
    def producer_epoch(self) -> int:
        return self._acc.producer_epoch if self._started else -1

    # -------------------------------------------------------------------------- one record
    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        *,
        headers: Sequence[Header] | Mapping[str, bytes | None] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Buffers one record; the returned future resolves with its metadata once acked.

        Waits while ``max_buffer_bytes`` are buffered. Raises at once for invalid arguments
        and for an unknown topic or partition; delivery failures fail the future.
        """
        value = _as_bytes(value, "value")
        key = _as_bytes(key, "key")
        header_items = _check_headers(headers)
        if timestamp_ms is not None and (
            isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int)
        ):
            raise TypeError(f"timestamp_ms must be an int (epoch ms), not {timestamp_ms!r}")
        await self._ready()
        partition = await self._choose_partition(topic, key, partition)
        size = record_size(value, key, header_items)
        if not self._memory.try_reserve(size):
            await self._memory.reserve(size)
        self._check_usable()
        if timestamp_ms is None:
            timestamp_ms = time.time_ns() // 1_000_000
        return self._acc.append(topic, partition, value, key, header_items, timestamp_ms, size)

    async def send_and_wait(self, topic: str, value: bytes | None, key: bytes | None = None,
                            **options: Any) -> RecordMetadata:  # fmt: skip
        """``send`` and wait for the acknowledgement."""
        return await (await self.send(topic, value, key, **options))

    # ------------------------------------------------------------------------------- bulk
    async def send_many(
        self,
        topic: str,
        values: Sequence[bytes | None] | pa.Array | pa.ChunkedArray,
        keys: Sequence[bytes | None] | pa.Array | pa.ChunkedArray | None = None,
        *,
        partition: int | None = None,
        headers: Sequence[Sequence[Header]] | pa.Array | None = None,
        timestamp_ms: int | Sequence[int] | pa.Array | None = None,
    ) -> BulkSendResult:
        """Sends many records and waits until all are acknowledged.

        Partitions are computed for all keys in one compiled pass (unkeyed records fill one
        partition's batch after another), records are grouped per partition with one sort,
        and each batch is encoded by one ``build_batch`` call.

        Returns:
            Every record's partition and offset, in input order.

        Raises:
            The first delivery error, after every batch has finished (some may be stored).
        """
        value_array = binary_array(values, "values")
        n = len(value_array)
        key_array = binary_array(keys, "keys") if keys is not None else None
        if key_array is not None and len(key_array) != n:
            raise ValueError(f"got {len(key_array)} keys for {n} values")
        header_array = _header_array(headers, n)
        timestamps = _timestamps(timestamp_ms, n)
        if n == 0:
            return BulkSendResult(topic, np.empty(0, np.int32), np.empty(0, np.int64))
        await self._ready()
        count = await self._cluster.partition_count(topic)
        sizes = _record_sizes(value_array, key_array, header_array)
        parts = await self._bulk_partitions(topic, count, key_array, partition, sizes)

        pending: list[tuple[np.ndarray, int, asyncio.Future[int]]] = []
        order = np.argsort(parts, kind="stable")
        sorted_parts = parts[order]
        starts = np.flatnonzero(np.r_[True, sorted_parts[1:] != sorted_parts[:-1]])
        ends = np.r_[starts[1:], n]
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            target = int(sorted_parts[start])
            for chunk in _chunks(order[start:end], sizes, self._batch_bytes):
                chunk_size = int(sizes[chunk].sum())
                if not self._memory.try_reserve(chunk_size):
                    await self._memory.reserve(chunk_size)
                self._check_usable()
                batch = self._acc.append_built(
                    topic,
                    target,
                    self._builder(value_array, key_array, header_array, timestamps, chunk),
                    len(chunk),
                    chunk_size,
                )
                pending.append((chunk, target, batch.done))
        outcomes = await asyncio.gather(*(done for _, _, done in pending), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        offsets = np.empty(n, np.int64)
        for (chunk, _, _), base in zip(pending, outcomes, strict=True):
            offsets[chunk] = np.arange(base, base + len(chunk), dtype=np.int64)
        return BulkSendResult(topic, parts, offsets)

    def _builder(self, values, keys, headers, timestamps, chunk: np.ndarray):
        compression = self._compression

        def build(producer_id: int, epoch: int, sequence: int) -> bytes:
            indices = pa.array(chunk)
            return build_batch(
                values.take(indices),
                keys.take(indices) if keys is not None else None,
                timestamps if isinstance(timestamps, int) else timestamps[chunk],
                headers.take(indices) if headers is not None else None,
                compression=compression,
                producer_id=producer_id,
                producer_epoch=epoch,
                base_sequence=sequence,
            )

        return build

    async def _bulk_partitions(
        self, topic: str, count: int, keys: pa.Array | None, partition: int | None, sizes
    ) -> np.ndarray:
        n = len(sizes)
        if partition is not None:
            target = await self._choose_partition(topic, None, partition)
            return np.full(n, target, np.int32)
        parts = partitions_for_keys(keys, count) if keys is not None else np.full(n, -1, np.int32)
        unkeyed = parts < 0
        if unkeyed.any():
            chunk_ids = (np.cumsum(sizes[unkeyed]) - 1) // self._batch_bytes
            parts[unkeyed] = self._sticky.spread(topic, count, chunk_ids)
        return parts

    # ------------------------------------------------------------------------ flush, close
    async def flush(self) -> None:
        """Sends everything buffered now and waits until each batch is acked or has failed."""
        if not self._started:
            return
        self._acc.close_all()
        self._sender.wakeup()
        pending = [batch.done for batch in list(self._acc.incomplete)]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def close(self, timeout_s: float | None = None) -> None:
        """Delivers what is buffered (up to ``timeout_s``), then disconnects.

        Records still undelivered at the timeout fail with a ``StreamHouseError``.
        """
        if self._closed:
            return
        self._closed = True
        if not self._started:
            return
        try:
            async with asyncio.timeout(timeout_s):
                await self._sender.close()
        except TimeoutError:
            self._sender.abort(StreamHouseError(
                f"the producer closed with records undelivered after {timeout_s} s",
                code=grpc.StatusCode.CANCELLED,
            ))  # fmt: skip
            await self._sender.close()
        self._memory.fail_waiters(StreamHouseError("the producer is closed"))
        await self._channels.close()

    # ---------------------------------------------------------------------------- helpers
    async def _ready(self) -> None:
        if not self._started:
            await self.start()
        self._check_usable()

    def _check_usable(self) -> None:
        if self._closed:
            raise StreamHouseError("the producer is closed")
        if self._sender.fatal_error is not None:
            raise self._sender.fatal_error

    async def _choose_partition(self, topic: str, key: bytes | None, partition: int | None) -> int:
        count = await self._cluster.partition_count(topic)
        if partition is None:
            if key is not None:
                return partition_for_key(key, count)
            return self._sticky.partition(topic, count)
        if isinstance(partition, bool) or not isinstance(partition, int):
            raise TypeError(f"partition must be an int, not {partition!r}")
        if not 0 <= partition < count:
            await self._cluster.refresh([topic])  # partitions may have been added
            count = await self._cluster.partition_count(topic)
            if not 0 <= partition < count:
                raise NotFoundError(
                    f"topic {topic!r} has partitions 0..{count - 1}, not {partition}",
                    code=grpc.StatusCode.NOT_FOUND,
                    reason="UNKNOWN_PARTITION",
                )
        return partition

    def _send_lingering(self) -> None:
        self._acc.close_all()
        self._sender.wakeup()

    def _batch_closed(self, topic: str, partition: int) -> None:
        count = self._cluster.cached_partition_count(topic)
        if count:
            self._sticky.batch_sent(topic, partition, count)


# ------------------------------------------------------------------------ argument checks
def _as_bytes(item: Any, name: str) -> bytes | None:
    if item is None or type(item) is bytes:
        return item
    if isinstance(item, _BYTES):
        return bytes(item)
    raise TypeError(f"{name} must be bytes or None, not {type(item).__name__}")


def _check_headers(headers: Any) -> tuple[Header, ...] | None:
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for item in items:
        try:
            name, payload = item
        except (TypeError, ValueError):
            raise TypeError(f"a header must be a (str, bytes | None) pair, not {item!r}") from None
        if not isinstance(name, str):
            raise TypeError(f"a header key must be str, not {type(name).__name__}")
        out.append((name, _as_bytes(payload, f"header {name!r}")))
    return tuple(out)


def _header_array(headers: Any, n: int) -> pa.Array | None:
    from streamhouse.broker.records.arrow import HEADER_TYPE

    if headers is None:
        return None
    if isinstance(headers, pa.ChunkedArray):
        headers = headers.combine_chunks()
    if not isinstance(headers, pa.Array):
        if len(headers) != n:
            raise ValueError(f"got {len(headers)} header lists for {n} records")
        try:
            headers = pa.array(headers, type=pa.list_(HEADER_TYPE))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise TypeError(f"headers must be lists of (str, bytes | None): {exc}") from exc
    elif len(headers) != n:
        raise ValueError(f"got {len(headers)} header lists for {n} records")
    if headers.null_count:
        headers = headers.fill_null(pa.scalar([], headers.type))
    return headers


def _timestamps(timestamp_ms: Any, n: int) -> int | np.ndarray:
    if timestamp_ms is None:
        return time.time_ns() // 1_000_000
    if isinstance(timestamp_ms, int | np.integer) and not isinstance(timestamp_ms, bool):
        return int(timestamp_ms)
    if isinstance(timestamp_ms, pa.ChunkedArray | pa.Array):
        if timestamp_ms.null_count:
            raise ValueError("timestamps must not contain nulls")
        if pa.types.is_timestamp(timestamp_ms.type):
            timestamp_ms = timestamp_ms.cast(pa.timestamp("ms")).cast(pa.int64())
        out = np.asarray(timestamp_ms.cast(pa.int64()))
    else:
        out = np.asarray(timestamp_ms, dtype=np.int64)
    if out.shape != (n,):
        raise ValueError(f"got {out.size} timestamps for {n} records")
    return out


def _lengths(array: pa.Array) -> np.ndarray:
    return pc.binary_length(array).fill_null(0).to_numpy().astype(np.int64)


def _record_sizes(values: pa.Array, keys: pa.Array | None, headers: pa.Array | None) -> np.ndarray:
    """Every record's size estimate, as ``record_size`` computes it for one."""
    sizes = _lengths(values) + MAX_RECORD_OVERHEAD
    if keys is not None:
        sizes += _lengths(keys)
    if headers is not None and len(headers.values):
        flat = headers.flatten()
        per_header = HEADER_OVERHEAD + _lengths(flat.field("key")) + _lengths(flat.field("value"))
        parents = pc.list_parent_indices(headers).to_numpy()
        sizes += np.bincount(parents, weights=per_header, minlength=len(sizes)).astype(np.int64)
    return sizes


def _chunks(indices: np.ndarray, sizes: np.ndarray, limit: int) -> list[np.ndarray]:
    """Splits one partition's record indices into batches of at most ``limit`` bytes (a single
    larger record gets a batch of its own). One searchsorted per batch, not per record."""
    cumulative = np.cumsum(sizes[indices])
    out = []
    start = 0
    consumed = 0
    while start < len(indices):
        end = int(np.searchsorted(cumulative, consumed + limit, side="right"))
        end = max(end, start + 1)
        out.append(indices[start:end])
        consumed = int(cumulative[end - 1])
        start = end
    return out
