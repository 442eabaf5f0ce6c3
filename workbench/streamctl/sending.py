"""Sending input lines in bulk: chunks of lines become Arrow columns for ``send_many``.

A few chunks are in flight at once, so a large file costs no per-line Python work and the
reading overlaps the sending. After the first failure nothing more is sent; the rest of the
input is only counted, so the outcome can say exactly how many records were not acknowledged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa
from streamhouse.broker.client import AsyncProducer
from streamhouse.broker.records.arrow import HEADER_TYPE
from streamhouse.workbench.streamctl.lines import (
    Records,
    count_records,
    read_chunks,
    split_keys,
    split_lines,
)

CHUNKS_IN_FLIGHT = 4


@dataclass
class Outcome:
    acknowledged: int = 0
    failed: int = 0
    error: BaseException | None = None


@dataclass(frozen=True)
class SendOptions:
    server: str
    topic: str
    acks: str
    compression: str
    key_sep: str | None
    partition: int | None
    headers: list[tuple[str, bytes]]


async def send_lines(source: BinaryIO, options: SendOptions) -> Outcome:
    producer = AsyncProducer(options.server, acks=options.acks, compression=options.compression)
    outcome = Outcome()
    in_flight: dict[asyncio.Task[object], int] = {}
    chunks = read_chunks(source)

    def settle(done: set[asyncio.Task[object]]) -> None:
        for task in done:
            count = in_flight.pop(task)
            if task.exception() is None:
                outcome.acknowledged += count
            else:
                outcome.failed += count
                outcome.error = outcome.error or task.exception()

    try:
        while outcome.error is None:
            block = await asyncio.to_thread(next, chunks, None)
            if block is None:
                break
            records = split_keys(split_lines(block), options.key_sep)
            task = asyncio.create_task(_send_chunk(producer, records, options))
            in_flight[task] = len(records)
            if len(in_flight) >= CHUNKS_IN_FLIGHT:
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                settle(done)
        if in_flight:
            done, _ = await asyncio.wait(in_flight)
            settle(done)
        if outcome.error is not None:
            outcome.failed += await asyncio.to_thread(count_records, chunks)
    finally:
        await producer.close()
    return outcome


async def _send_chunk(producer: AsyncProducer, records: Records, options: SendOptions) -> None:
    shared = None
    if options.headers:
        row = pa.scalar(
            [{"key": k, "value": v} for k, v in options.headers], type=pa.list_(HEADER_TYPE)
        )
        shared = pa.repeat(row, len(records))
    await producer.send_many(
        options.topic, records.values, records.keys, partition=options.partition, headers=shared
    )
