"""The Produce service: unary and streamed produce, producer ids.

Client-built RecordBatches go to the log as received. ``records`` (for small clients) are
grouped by partition with Kafka's default partitioner and built into one batch per partition.
The stream pipelines requests: each is started as soon as it arrives (so appends keep their
order on every partition) and answered in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Mapping

import grpc
from streamhouse.broker.log import Acks
from streamhouse.broker.metadata import InvalidRequestError, UnknownPartitionError
from streamhouse.broker.records import Compression, build_batch
from streamhouse.broker.records.partitioner import partition_for_key
from streamhouse.broker.rpc.calls import abort, check_request, unary
from streamhouse.broker.rpc.errors import error_proto, map_error
from streamhouse.broker.rpc.v1 import broker_pb2 as pb
from streamhouse.broker.rpc.v1 import broker_pb2_grpc
from streamhouse.broker.service import BrokerService, PartitionProduceResult

Context = grpc.aio.ServicerContext

ACKS = {pb.ACKS_LEADER: Acks.LEADER, pb.ACKS_NONE: Acks.NONE, pb.ACKS_ALL: Acks.ALL}
COMPRESSION = {
    pb.COMPRESSION_NONE: Compression.NONE,
    pb.COMPRESSION_GZIP: Compression.GZIP,
    pb.COMPRESSION_SNAPPY: Compression.SNAPPY,
    pb.COMPRESSION_LZ4: Compression.LZ4,
    pb.COMPRESSION_ZSTD: Compression.ZSTD,
}
DEFAULT_TIMEOUT_S = 30.0
MAX_STREAM_IN_FLIGHT = 64


class ProduceServicer(broker_pb2_grpc.ProduceServicer):
    def __init__(self, service: BrokerService) -> None:
        self.service = service
        self._round_robin = itertools.count()

    @unary("produce")
    async def Produce(self, request: pb.ProduceRequest, context: Context):
        results = await self._produce(request)
        errors = [r.error for r in results if r.error is not None]
        if errors and len(errors) == len(results):
            raise errors[0]  # every partition failed: the call fails with the first reason
        return _response(request.request_id, results)

    async def ProduceStream(
        self, requests: AsyncIterator[pb.ProduceRequest], context: Context
    ) -> AsyncIterator[pb.ProduceResponse]:
        pending: asyncio.Queue[asyncio.Task[pb.ProduceResponse] | None] = asyncio.Queue(
            MAX_STREAM_IN_FLIGHT
        )

        # Requests for different partitions run concurrently (sharing the WAL's group commit);
        # requests for the same partition wait for the previous one, so their offsets follow
        # the order they were sent in. Server-partitioned `records` requests wait for all.
        previous: dict[int, asyncio.Task[pb.ProduceResponse]] = {}
        everything = -1

        async def answer(
            request: pb.ProduceRequest, after: list[asyncio.Task[pb.ProduceResponse]]
        ) -> pb.ProduceResponse:
            if after:
                await asyncio.wait(after)
            try:
                return _response(request.request_id, await self._produce(request))
            except Exception as exc:  # a bad request fails only itself, not the stream
                error = error_proto(exc)
                partitions = [p.partition for p in request.partitions] or [-1]
                return pb.ProduceResponse(
                    request_id=request.request_id,
                    results=[
                        pb.PartitionProduceResult(partition=p, error=error) for p in partitions
                    ],
                )

        async def read() -> None:
            async for request in requests:
                check_request(request)  # a stream of garbage ends the stream
                keys = [p.partition for p in request.partitions] or [everything]
                if everything in keys:
                    after = list(previous.values())
                    previous.clear()
                else:
                    after = [previous[k] for k in {*keys, everything} if k in previous]
                task = asyncio.create_task(answer(request, after))
                for key in keys:
                    previous[key] = task
                await pending.put(task)
            await pending.put(None)

        reader = asyncio.create_task(read())
        try:
            while True:
                task = await pending.get()
                if task is None:
                    break
                yield await task
            await reader
        except Exception as exc:
            await abort(context, "produce_stream", exc)
        finally:
            reader.cancel()
            while not pending.empty():
                task = pending.get_nowait()
                if task is not None:
                    task.cancel()
            with contextlib.suppress(BaseException):
                await reader

    @unary("init_producer")
    async def InitProducer(self, request: pb.InitProducerRequest, context: Context):
        producer_id, epoch = await self.service.metadata.init_producer(request.producer_id or None)
        return pb.InitProducerResponse(producer_id=producer_id, producer_epoch=epoch)

    async def _produce(self, request: pb.ProduceRequest) -> list[PartitionProduceResult]:
        if request.acks not in ACKS:
            raise InvalidRequestError(f"unknown acks value {request.acks}")
        if request.partitions and request.records:
            raise InvalidRequestError("send either record batches or records, not both")
        if request.records:
            batches = await self._batch_records(request)
        else:
            batches = {}
            for item in request.partitions:
                if item.partition in batches:
                    raise InvalidRequestError(f"partition {item.partition} appears twice")
                batches[item.partition] = list(item.batches)
        timeout = request.timeout_ms / 1000 if request.timeout_ms > 0 else DEFAULT_TIMEOUT_S
        return await self.service.produce(request.topic, batches, ACKS[request.acks], timeout)

    async def _batch_records(self, request: pb.ProduceRequest) -> Mapping[int, list[bytes]]:
        """The convenience path: one record at a time is fine here, high rates send batches."""
        if request.compression not in COMPRESSION:
            raise InvalidRequestError(f"unknown compression {request.compression}")
        topic = await self.service.metadata.get_topic(request.topic)
        count = topic.partitions
        if request.HasField("partition") and not 0 <= request.partition < count:
            raise UnknownPartitionError(
                f"topic {topic.name!r} has partitions 0..{count - 1}, not {request.partition}"
            )
        unkeyed = next(self._round_robin) % count
        groups: dict[int, list[pb.Record]] = {}
        for record in request.records:
            if request.HasField("partition"):
                partition = request.partition
            elif record.HasField("key"):
                partition = partition_for_key(record.key, count)
            else:
                partition = unkeyed
            groups.setdefault(partition, []).append(record)
        out: dict[int, list[bytes]] = {}
        for partition, records in groups.items():
            now_or = [r.timestamp_ms or None for r in records]
            timestamps = None if all(t is None for t in now_or) else _fill_now(now_or)
            out[partition] = [
                build_batch(
                    [r.value if r.HasField("value") else None for r in records],
                    keys=[r.key if r.HasField("key") else None for r in records],
                    timestamps=timestamps,
                    headers=[
                        [(h.key, h.value if h.HasField("value") else None) for h in r.headers]
                        for r in records
                    ],
                    compression=COMPRESSION[request.compression],
                )
            ]
        return out


def _fill_now(timestamps: list[int | None]) -> list[int]:
    import time

    now = int(time.time() * 1000)
    return [now if t is None else t for t in timestamps]


def _response(request_id: int, results: list[PartitionProduceResult]) -> pb.ProduceResponse:
    out = []
    for item in results:
        if item.error is not None:
            out.append(
                pb.PartitionProduceResult(partition=item.partition, error=error_proto(item.error))
            )
            continue
        result = item.result
        assert result is not None
        out.append(
            pb.PartitionProduceResult(
                partition=item.partition,
                base_offset=min(result.base_offsets) if result.base_offsets else -1,
                last_offset=result.last_offset,
                batch_base_offsets=result.base_offsets,
                log_append_time_ms=result.log_append_time,
            )
        )
    return pb.ProduceResponse(request_id=request_id, results=out)


__all__ = ["ProduceServicer", "map_error"]
