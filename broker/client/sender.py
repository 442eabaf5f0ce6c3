"""The producer's network side: closed batches go to their partition leaders over streams.

One background task drains the accumulator. For each leader agent it keeps one bidirectional
``Produce.ProduceStream`` with up to ``max_in_flight`` requests outstanding; the server answers
in request order, so responses are matched to requests by position (and checked against
``request_id``). A broken stream or a request older than ``request_timeout`` fails everything
in flight on that stream, and the failures go through the same retry rules as per-partition
errors in a response.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
from dataclasses import dataclass, field

import grpc
from streamhouse.broker.client.accumulator import PartitionQueue, ProducerBatch, RecordAccumulator
from streamhouse.broker.client.channels import Channels
from streamhouse.broker.client.cluster import Cluster
from streamhouse.broker.client.errors import (
    FencedError,
    NotFoundError,
    NotLeaderError,
    OutOfOrderSequenceError,
    RequestTimeoutError,
    StreamHouseError,
    UnavailableError,
    from_proto,
    from_rpc_error,
)
from streamhouse.broker.client.retry import RetryPolicy
from streamhouse.broker.rpc.v1 import broker_pb2 as pb

log = logging.getLogger("streamhouse.client.producer")
# Reasons that belong to one batch although the server fails the whole request with them.
ISOLATE_REASONS = frozenset({"MESSAGE_TOO_LARGE", "CORRUPT_MESSAGE"})


@dataclass(eq=False)
class InFlight:
    """One request on a stream: which batches of which partitions it carries."""

    request_id: int
    topic: str
    batches: dict[int, list[ProducerBatch]]
    sent_at: float
    answered: bool = field(default=False)


class AgentStream:
    """The ProduceStream to one agent, reopened on the next send after it breaks."""

    def __init__(self, address: str, channels: Channels, sender: Sender) -> None:
        self.address = address
        self.channels = channels
        self.sender = sender
        self.in_flight: collections.deque[InFlight] = collections.deque()
        self._call: grpc.aio.StreamStreamCall | None = None
        self._reader: asyncio.Task[None] | None = None

    def oldest_sent_at(self) -> float | None:
        return self.in_flight[0].sent_at if self.in_flight else None

    async def send(self, item: InFlight, request: pb.ProduceRequest) -> None:
        call = self._call
        if call is None:
            call = self._call = self.channels.stub(self.address, "produce").ProduceStream()
            self._reader = asyncio.create_task(self._read(call))
        self.in_flight.append(item)
        try:
            await call.write(request)
        except grpc.aio.AioRpcError as exc:
            self.abort(call, from_rpc_error(exc, self.address))
        except Exception as exc:  # the call finished under us (InvalidStateError, ...)
            self.abort(call, UnavailableError(
                f"cannot reach StreamHouse at {self.address}: produce stream closed ({exc!r})",
                code=grpc.StatusCode.UNAVAILABLE,
            ))  # fmt: skip

    async def _read(self, call: grpc.aio.StreamStreamCall) -> None:
        error: StreamHouseError
        try:
            while True:
                response = await call.read()
                if response is grpc.aio.EOF:
                    error = UnavailableError(
                        f"cannot reach StreamHouse at {self.address}: the produce stream ended",
                        code=grpc.StatusCode.UNAVAILABLE,
                    )
                    break
                if call is not self._call:
                    return  # aborted meanwhile; its requests were failed already
                expected = self.in_flight[0].request_id if self.in_flight else None
                if response.request_id != expected:
                    error = StreamHouseError(
                        f"{self.address} answered request {response.request_id} when "
                        f"{expected} was next; restarting the stream",
                        code=grpc.StatusCode.INTERNAL,
                    )
                    break
                item = self.in_flight.popleft()
                self.sender.on_response(item, response, self.address)
        except grpc.aio.AioRpcError as exc:
            error = from_rpc_error(exc, self.address)
        except asyncio.CancelledError:
            return
        self.abort(call, error)

    def expire(self, error: StreamHouseError) -> None:
        """Gives up on the current stream (its oldest request is overdue)."""
        self.abort(self._call, error)

    def abort(self, call: grpc.aio.StreamStreamCall | None, error: StreamHouseError) -> None:
        """Ends ``call`` (if still current) and fails its requests in flight with ``error``."""
        if call is None or call is not self._call:
            return
        self._call = None
        failed, self.in_flight = self.in_flight, collections.deque()
        call.cancel()
        for item in failed:
            self.sender.on_failure(item, error)

    async def close(self) -> None:
        call, reader = self._call, self._reader
        self._call = None
        if call is not None:
            with contextlib.suppress(Exception):
                await call.done_writing()
            call.cancel()
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader


class Sender:
    """Moves batches from the accumulator to the leaders and applies the answers."""

    def __init__(
        self,
        accumulator: RecordAccumulator,
        cluster: Cluster,
        channels: Channels,
        *,
        acks: int,
        retry: RetryPolicy,
        request_timeout_s: float,
        max_in_flight: int,
        max_request_bytes: int,
    ) -> None:
        self.acc = accumulator
        self.cluster = cluster
        self.channels = channels
        self.acks = acks
        self.retry = retry
        self.request_timeout_s = request_timeout_s
        self.max_in_flight = max_in_flight
        self.max_request_bytes = max_request_bytes
        self.fatal_error: StreamHouseError | None = None
        self._loop = asyncio.get_running_loop()
        self._streams: dict[str, AgentStream] = {}
        self._request_ids = itertools.count(1)
        self._waiter: asyncio.Future[None] | None = None
        self._woken = False
        self._closing = False
        self._metadata_retry_at = 0.0
        self._metadata_failures = 0
        self._task: asyncio.Task[None] | None = None

    # --------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="streamhouse-producer-sender")

    def wakeup(self) -> None:
        self._woken = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def close(self) -> None:
        """Stops after everything queued is acknowledged or has failed."""
        self._closing = True
        self.acc.close_all()
        self.wakeup()
        if self._task is not None:
            await asyncio.shield(self._task)
        for stream in self._streams.values():
            await stream.close()

    def abort(self, error: StreamHouseError) -> None:
        """Fails everything pending at once (close with a zero timeout)."""
        self._fail_producer(error)

    # --------------------------------------------------------------------------- the loop
    async def _run(self) -> None:
        try:
            while not (self._closing and not self.acc.incomplete):
                self._woken = False
                now = self._loop.time()
                deadlines = [self.acc.close_expired(now)]
                await self._refresh_metadata(now)
                deadlines.append(self._expire_requests(now))
                await self._send_ready(now)
                deadlines.append(self.acc.next_resume(now))
                if self.cluster.stale_topics:
                    deadlines.append(self._metadata_retry_at)
                if not self._woken:
                    await self._sleep_until(min((d for d in deadlines if d), default=None))
        except Exception as exc:  # a bug here must not leave callers waiting forever
            log.exception("the producer's sender stopped")
            self._fail_producer(StreamHouseError(f"the producer's sender stopped: {exc!r}"))

    async def _sleep_until(self, deadline: float | None) -> None:
        self._waiter = self._loop.create_future()
        handle = None
        if deadline is not None:
            handle = self._loop.call_at(max(deadline, self._loop.time()), self.wakeup)
        try:
            await self._waiter
        finally:
            self._waiter = None
            if handle is not None:
                handle.cancel()

    async def _refresh_metadata(self, now: float) -> None:
        stale = self.cluster.stale_topics
        if not stale or now < self._metadata_retry_at:
            return
        try:
            await self.cluster.metadata(stale)
            self._metadata_failures = 0
        except StreamHouseError as exc:
            log.debug("metadata refresh failed: %s", exc)
            self._metadata_retry_at = self._loop.time() + self.retry.delay(self._metadata_failures)
            self._metadata_failures += 1

    def _expire_requests(self, now: float) -> float | None:
        """Breaks streams whose oldest request is overdue; returns the next such deadline."""
        deadline = None
        for stream in self._streams.values():
            sent_at = stream.oldest_sent_at()
            if sent_at is None:
                continue
            expires = sent_at + self.request_timeout_s
            if expires <= now:
                stream.expire(RequestTimeoutError(
                    f"{stream.address} did not answer a produce request within "
                    f"{self.request_timeout_s:g} s",
                    code=grpc.StatusCode.DEADLINE_EXCEEDED,
                ))  # fmt: skip
            elif deadline is None or expires < deadline:
                deadline = expires
        return deadline

    async def _send_ready(self, now: float) -> None:
        by_target: dict[tuple[str, str], list[PartitionQueue]] = {}
        for queue in self.acc.sendable(now):
            address = self.cluster.leader(queue.topic, queue.partition)
            by_target.setdefault((address, queue.topic), []).append(queue)
        idempotent = self.acc.idempotent
        for (address, topic), queues in by_target.items():
            stream = self._streams.get(address)
            if stream is None:
                stream = self._streams[address] = AgentStream(address, self.channels, self)
            while queues and len(stream.in_flight) < self.max_in_flight:
                batches: dict[int, list[ProducerBatch]] = {}
                size = 0
                while queues and size < self.max_request_bytes:
                    queue = queues.pop()
                    if not queue.can_send(now, idempotent):
                        continue  # an answer that arrived meanwhile changed its state
                    alone = queue.next_goes_alone
                    if alone and batches:
                        queues.append(queue)  # next request, by itself
                        break
                    taken = queue.take(self.max_request_bytes - size, idempotent)
                    batches[queue.partition] = taken
                    size += sum(len(b.payload) for b in taken)
                    if alone:
                        break
                if not batches:
                    break
                request_id = next(self._request_ids)
                request = pb.ProduceRequest(
                    topic=topic,
                    acks=self.acks,
                    partitions=[
                        pb.PartitionBatches(partition=p, batches=[b.payload for b in taken])
                        for p, taken in batches.items()
                    ],
                    request_id=request_id,
                    timeout_ms=int(self.request_timeout_s * 1000),
                )
                await stream.send(InFlight(request_id, topic, batches, now), request)

    # -------------------------------------------------------------------------- outcomes
    def on_response(self, item: InFlight, response: pb.ProduceResponse, address: str) -> None:
        shared = sum(len(b) for b in item.batches.values()) > 1
        results = {r.partition: r for r in response.results}
        for partition, batches in item.batches.items():
            queue = self.acc.queue(item.topic, partition)
            queue.in_flight -= len(batches)
            result = results.get(partition) or results.get(-1)
            if result is None:
                error: StreamHouseError | None = StreamHouseError(
                    f"{address} sent no result for {item.topic}[{partition}]",
                    code=grpc.StatusCode.INTERNAL,
                )
            else:
                error = from_proto(result.error, address) if result.HasField("error") else None
            if error is not None:
                for batch in batches:
                    self._failed(queue, batch, error, shared)
                continue
            assert result is not None
            bases = list(result.batch_base_offsets)
            if len(bases) != len(batches):  # older servers: only the first offset
                bases = list(itertools.accumulate(
                    (b.record_count for b in batches[:-1]), initial=result.base_offset
                ))  # fmt: skip
            for batch, base in zip(batches, bases, strict=True):
                batch.complete(base)
            last = batches[-1]
            if last.base_sequence >= 0:
                queue.acked_sequence = (last.base_sequence + last.record_count) % 2**31
        self.wakeup()

    def on_failure(self, item: InFlight, error: StreamHouseError) -> None:
        for partition, batches in item.batches.items():
            queue = self.acc.queue(item.topic, partition)
            queue.in_flight -= len(batches)
            for batch in batches:
                self._failed(queue, batch, error)
        self.wakeup()

    def _failed(
        self,
        queue: PartitionQueue,
        batch: ProducerBatch,
        error: StreamHouseError,
        shared: bool = False,
    ) -> None:
        if isinstance(error, FencedError) and error.reason == "PRODUCER_FENCED":
            self._fail_producer(error)
            return
        if shared and error.reason in ISOLATE_REASONS:
            # The server refuses a whole request for one bad batch: resend each batch by
            # itself so only the bad one fails.
            batch.alone = True
            queue.put_back(batch)
            queue.retrying = True
            return
        if isinstance(error, NotLeaderError):
            self.cluster.note_leader(queue.topic, queue.partition, error.leader_address)
        elif isinstance(error, UnavailableError | NotFoundError):
            self.cluster.mark_stale(queue.topic)  # the leader may have moved, or partitions
        # A later batch is out of order only because an earlier one failed: resend in order.
        follows_failure = isinstance(error, OutOfOrderSequenceError) and queue.retrying
        if follows_failure or self.retry.should_retry(error, batch.attempts):
            delay = 0.0 if follows_failure else self.retry.delay(batch.attempts)
            if not follows_failure:
                batch.attempts += 1
            queue.put_back(batch)
            queue.resume_at = max(queue.resume_at, self._loop.time() + delay)
            log.debug("retrying a batch of %s[%d] in %.3f s: %s",
                      queue.topic, queue.partition, delay, error)  # fmt: skip
        else:
            batch.fail(error)
        queue.retrying = True

    def _fail_producer(self, error: StreamHouseError) -> None:
        if self.fatal_error is None:
            self.fatal_error = error
        self.acc.fail_all(error)
        self.wakeup()
