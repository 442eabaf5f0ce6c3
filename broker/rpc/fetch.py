"""The Fetch service: fetch with long poll, server-streaming subscribe, offset lookups."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from streamhouse.broker.metadata import InvalidRequestError
from streamhouse.broker.records import parse_header
from streamhouse.broker.rpc.calls import abort, check_request, unary
from streamhouse.broker.rpc.errors import error_proto
from streamhouse.broker.rpc.v1 import broker_pb2 as pb
from streamhouse.broker.rpc.v1 import broker_pb2_grpc
from streamhouse.broker.service import BrokerService, FetchedPartition

Context = grpc.aio.ServicerContext

OFFSET_SPECS = {
    pb.OFFSET_SPEC_EARLIEST: "earliest",
    pb.OFFSET_SPEC_LATEST: "latest",
    pb.OFFSET_SPEC_TIMESTAMP: "timestamp",
}
SUBSCRIBE_POLL_MS = 1000  # a subscribe stream re-checks cancellation at least this often
MAX_WAIT_MS = 60_000


class FetchServicer(broker_pb2_grpc.FetchServicer):
    def __init__(self, service: BrokerService) -> None:
        self.service = service

    @unary("fetch")
    async def Fetch(self, request: pb.FetchRequest, context: Context):
        if not request.partitions:
            raise InvalidRequestError("a fetch request needs at least one partition")
        if not 0 <= request.max_wait_ms <= MAX_WAIT_MS:
            raise InvalidRequestError(f"max_wait_ms must be within 0..{MAX_WAIT_MS}")
        fetched = await self.service.fetch(
            request.topic,
            [(p.partition, p.offset, p.max_bytes) for p in request.partitions],
            max_bytes=request.max_bytes,
            max_wait_ms=request.max_wait_ms,
            min_bytes=request.min_bytes,
        )
        if all(f.error is not None for f in fetched):
            raise fetched[0].error  # type: ignore[misc]
        return _response(request.topic, fetched)

    async def Subscribe(
        self, request: pb.SubscribeRequest, context: Context
    ) -> AsyncIterator[pb.FetchResponse]:
        try:
            check_request(request)
            positions = {p.partition: p.offset for p in request.partitions}
            limits = {p.partition: p.max_bytes for p in request.partitions}
            if not positions:
                raise InvalidRequestError("a subscribe request needs at least one partition")
            while True:
                fetched = await self.service.fetch(
                    request.topic,
                    [(p, offset, limits[p]) for p, offset in positions.items()],
                    max_bytes=request.max_bytes,
                    max_wait_ms=SUBSCRIBE_POLL_MS,
                )
                if all(f.error is not None for f in fetched):
                    raise fetched[0].error  # type: ignore[misc]
                if any(f.batches for f in fetched):
                    for item in fetched:
                        if item.batches:
                            positions[item.partition] = _next_offset(item.batches)
                    yield _response(request.topic, fetched)
        except Exception as exc:
            await abort(context, "subscribe", exc)

    @unary("list_offsets")
    async def ListOffsets(self, request: pb.ListOffsetsRequest, context: Context):
        if request.spec not in OFFSET_SPECS:
            raise InvalidRequestError(f"unknown offset spec {request.spec}")
        results = await self.service.list_offsets(
            request.topic,
            list(request.partitions),
            OFFSET_SPECS[request.spec],
            request.timestamp_ms,
        )
        if results and all(error is not None for _, _, error in results):
            raise results[0][2]  # type: ignore[misc]
        return pb.ListOffsetsResponse(
            offsets=[
                pb.PartitionOffset(
                    partition=partition,
                    offset=-1 if offset is None else offset,
                    error=error_proto(error),
                )
                for partition, offset, error in results
            ]
        )


def _next_offset(batches: list[bytes]) -> int:
    return parse_header(batches[-1]).last_offset + 1


def _response(topic: str, fetched: list[FetchedPartition]) -> pb.FetchResponse:
    return pb.FetchResponse(
        topic=topic,
        partitions=[
            pb.FetchedPartition(
                partition=f.partition,
                high_watermark=f.high_watermark,
                log_start_offset=f.log_start_offset,
                batches=f.batches,
                error=error_proto(f.error),
            )
            for f in fetched
        ],
    )
