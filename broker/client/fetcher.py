"""The consumer's reads: Fetch and ListOffsets calls routed to partition leaders.

A Fetch request names one topic, so a poll sends one request per (leader, topic) pair,
concurrently, and returns as soon as one of them brings data: waiting for every long poll
would add ``fetch_max_wait_ms`` to every poll of a consumer whose other topics are idle.
Errors are returned per partition so one bad partition never hides the others' data.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import grpc
import pyarrow as pa
from streamhouse.broker.client.cluster import Cluster
from streamhouse.broker.client.decode import decode_fetched
from streamhouse.broker.client.errors import (
    NotLeaderError,
    StreamHouseError,
    UnavailableError,
    from_proto,
)
from streamhouse.broker.client.models import TopicPartition
from streamhouse.broker.rpc.v1 import broker_pb2 as pb

SPECS = {
    "earliest": pb.OFFSET_SPEC_EARLIEST,
    "latest": pb.OFFSET_SPEC_LATEST,
    "timestamp": pb.OFFSET_SPEC_TIMESTAMP,
}


@dataclass(frozen=True, slots=True)
class Fetched:
    """One partition's fetch outcome: records from the position on, or an error."""

    tp: TopicPartition
    position: int  # the position it was fetched from
    table: pa.Table | None = None
    next_position: int = 0
    error: StreamHouseError | None = None


class Fetcher:
    def __init__(
        self,
        cluster: Cluster,
        *,
        fetch_max_bytes: int,
        max_partition_fetch_bytes: int,
        request_timeout_s: float,
    ) -> None:
        self.cluster = cluster
        self.fetch_max_bytes = fetch_max_bytes
        self.max_partition_fetch_bytes = max_partition_fetch_bytes
        self.request_timeout_s = request_timeout_s

    async def fetch(
        self, positions: Mapping[TopicPartition, int], max_wait_ms: int
    ) -> list[Fetched]:
        """Fetches every partition from its position; returns once some data (or an error)
        arrived, or after ``max_wait_ms`` with nothing."""
        groups: dict[tuple[str, str], dict[int, int]] = {}
        for tp, offset in positions.items():
            address = self.cluster.leader(tp.topic, tp.partition)
            groups.setdefault((address, tp.topic), {})[tp.partition] = offset
        pending = {
            asyncio.create_task(self._fetch_one(address, topic, offsets, max_wait_ms))
            for (address, topic), offsets in groups.items()
        }
        results: list[Fetched] = []
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    results.extend(task.result())
                if any(r.error is not None or (r.table is not None and r.table.num_rows) or
                       r.next_position > r.position for r in results):  # fmt: skip
                    break
        finally:
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    results.extend(await task)  # finished before the cancel landed
        return results

    async def _fetch_one(
        self, address: str, topic: str, offsets: dict[int, int], max_wait_ms: int
    ) -> list[Fetched]:
        request = pb.FetchRequest(
            topic=topic,
            partitions=[
                pb.FetchPartition(partition=p, offset=o, max_bytes=self.max_partition_fetch_bytes)
                for p, o in offsets.items()
            ],
            max_bytes=self.fetch_max_bytes,
            max_wait_ms=max(0, max_wait_ms),
            min_bytes=1,
        )
        timeout = self.request_timeout_s + max_wait_ms / 1000
        try:
            response = await self.cluster.channels.call(address, "fetch", "Fetch", request, timeout)
        except StreamHouseError as exc:
            self._route_after(topic, offsets, exc)
            return [Fetched(TopicPartition(topic, p), o, error=exc) for p, o in offsets.items()]
        out = []
        for item in response.partitions:
            tp = TopicPartition(topic, item.partition)
            position = offsets.get(item.partition)
            if position is None:
                continue  # not asked for; ignore rather than trust it
            error = from_proto(item.error, address) if item.HasField("error") else None
            if error is not None:
                self._route_after(topic, {item.partition: position}, error)
                out.append(Fetched(tp, position, error=error))
                continue
            try:
                table, next_position = decode_fetched(topic, item.partition, item.batches, position)
            except Exception as exc:  # a corrupt batch from the server: report, do not skip
                out.append(Fetched(tp, position, error=StreamHouseError(
                    f"cannot decode {topic}[{item.partition}] at offset {position} from "
                    f"{address}: {exc}", code=grpc.StatusCode.DATA_LOSS,
                )))  # fmt: skip
                continue
            out.append(Fetched(tp, position, table, next_position))
        return out

    def _route_after(self, topic: str, partitions: Iterable[int], error: StreamHouseError) -> None:
        if isinstance(error, NotLeaderError):
            for partition in partitions:
                self.cluster.note_leader(topic, partition, error.leader_address)
        elif isinstance(error, UnavailableError):
            self.cluster.mark_stale(topic)

    async def list_offsets(
        self, tps: Iterable[TopicPartition], spec: str, timestamp_ms: int = 0
    ) -> dict[TopicPartition, int | None]:
        """Offsets per partition ("earliest", "latest", or the first at/after a timestamp;
        None when no record is that late), asking each partition's leader, with retries."""
        wanted = set(tps)
        out: dict[TopicPartition, int | None] = {}

        async def attempt() -> None:
            missing = [tp for tp in wanted if tp not in out]
            groups: dict[tuple[str, str], list[int]] = {}
            for tp in missing:
                address = self.cluster.leader(tp.topic, tp.partition)
                groups.setdefault((address, tp.topic), []).append(tp.partition)
            results = await asyncio.gather(
                *(self._list_one(a, t, ps, spec, timestamp_ms) for (a, t), ps in groups.items()),
                return_exceptions=True,
            )
            first_error: BaseException | None = None
            for result in results:
                if isinstance(result, BaseException):
                    first_error = first_error or result
                    continue
                for tp, offset, error in result:
                    if error is None:
                        out[tp] = offset
                    else:
                        first_error = first_error or error
            if first_error is not None:
                raise first_error

        if wanted:
            await self.cluster.retry.call(attempt)
        return out

    async def _list_one(
        self, address: str, topic: str, partitions: list[int], spec: str, timestamp_ms: int
    ) -> list[tuple[TopicPartition, int | None, StreamHouseError | None]]:
        request = pb.ListOffsetsRequest(
            topic=topic, partitions=sorted(partitions), spec=SPECS[spec], timestamp_ms=timestamp_ms
        )
        try:
            response = await self.cluster.channels.call(
                address, "fetch", "ListOffsets", request, self.request_timeout_s
            )
        except StreamHouseError as exc:
            self._route_after(topic, partitions, exc)
            raise
        out = []
        for item in response.offsets:
            error = from_proto(item.error, address) if item.HasField("error") else None
            if error is not None:
                self._route_after(topic, [item.partition], error)
            offset = None if item.offset < 0 else item.offset
            out.append((TopicPartition(topic, item.partition), offset, error))
        return out
