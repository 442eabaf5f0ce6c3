"""Small produce for scripts and curl: JSON records in, one RecordBatch per partition out.

The bulk paths are the Kafka protocol and gRPC; this one is bounded (``MAX_RECORDS`` records
and ``MAX_BODY_BYTES`` of JSON) so a script cannot make the server hold a large request in
Python objects. Within that bound the JSON is decoded and keys are hashed record by record
(pydantic builds an object per record anyway); grouping by partition is one numpy sort and each
group is encoded by one ``build_batch`` call, so the batch bytes go to the log as they would
from any other client.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Literal

import numpy as np
import pyarrow as pa
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from streamhouse.broker.log import Acks
from streamhouse.broker.records import build_batch
from streamhouse.broker.records.partitioner import partition_for_key
from streamhouse.broker.service import PartitionProduceResult
from streamhouse.workbench.http.errors import (
    API_PREFIX,
    ERROR_RESPONSES,
    ApiError,
    ErrorInfo,
    ServiceRoute,
    error_info,
)
from streamhouse.workbench.http.services import Broker

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
MAX_RECORDS = 10_000
MAX_BODY_BYTES = 1024 * 1024
ACKS = {"leader": Acks.LEADER, "all": Acks.ALL, "none": Acks.NONE}
HEADERS_TYPE = pa.list_(pa.struct([("key", pa.string()), ("value", pa.binary())]))

router = APIRouter(
    prefix=f"{API_PREFIX}/topics",
    tags=["records"],
    route_class=ServiceRoute,
    responses={
        **ERROR_RESPONSES,
        413: {
            "model": ERROR_RESPONSES[400]["model"],
            "description": f"more than {MAX_RECORDS} records or {MAX_BODY_BYTES} bytes of JSON",
        },
    },
)


class RecordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str | None = None
    value: str | None = None
    headers: dict[str, str | None] = Field(default_factory=dict)
    partition: int | None = Field(
        None, ge=0, le=INT32_MAX, description="explicit partition; wins over the key"
    )
    timestamp_ms: int | None = Field(
        None, ge=0, le=INT64_MAX, description="create time (epoch ms); default: now"
    )


class ProduceRecords(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[RecordIn] = Field(min_length=1)
    acks: Literal["leader", "all", "none"] = "leader"
    encoding: Literal["utf-8", "base64"] = Field(
        "utf-8", description="how keys, values and header values are written in this request"
    )


class PartitionOffsets(BaseModel):
    partition: int
    record_count: int
    base_offset: int = Field(-1, description="offset of this partition's first record; -1 on error")
    last_offset: int = -1
    error: ErrorInfo | None = None


class ProduceResult(BaseModel):
    topic: str
    record_count: int
    partitions: list[PartitionOffsets] = Field(
        description="records of one partition keep request order: the k-th has base_offset + k"
    )


class RoundRobin:
    """Spreads unkeyed records without an explicit partition over all partitions in turn.

    The position is per topic and carries over between requests, so a script sending one
    record per request still reaches every partition.
    """

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def take(self, topic: str, count: int, partitions: int) -> np.ndarray:
        start = self._next.get(topic, 0)
        self._next[topic] = (start + count) % partitions
        return (start + np.arange(count, dtype=np.int64)) % partitions


def _decoder(encoding: str) -> Callable[[str], bytes]:
    if encoding == "base64":
        return lambda text: base64.b64decode(text, validate=True)
    return lambda text: text.encode("utf-8")


def _decode(texts: list[str | None], decode: Callable[[str], bytes], what: str) -> list:
    try:
        return [None if text is None else decode(text) for text in texts]
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ApiError(400, "INVALID_REQUEST", f"a record {what} cannot be decoded: {exc}") from exc


def _partitions(
    body: ProduceRecords, keys: list[bytes | None], count: int, topic: str, spread: RoundRobin
) -> np.ndarray:
    """Explicit partition, else Kafka's partition for the key, else round robin."""
    chosen = np.array(
        [-1 if r.partition is None else r.partition for r in body.records], dtype=np.int64
    )
    for i, key in enumerate(keys):
        if chosen[i] < 0 and key is not None:
            chosen[i] = partition_for_key(key, count)
    free = np.flatnonzero(chosen < 0)
    if free.size:
        chosen[free] = spread.take(topic, int(free.size), count)
    return chosen


def _headers(body: ProduceRecords, decode: Callable[[str], bytes]) -> pa.Array:
    names = [[k for k in r.headers] for r in body.records]
    texts = [v for r in body.records for v in r.headers.values()]
    decoded = iter(_decode(texts, decode, "header value"))
    return pa.array(
        [[{"key": k, "value": next(decoded)} for k in record] for record in names],
        type=HEADERS_TYPE,
    )


def _batches(
    body: ProduceRecords, keys: list, values: list, partitions: np.ndarray, decode
) -> dict[int, list[bytes]]:
    """One batch per partition, records in request order."""
    key_array = pa.array(keys, type=pa.binary())
    value_array = pa.array(values, type=pa.binary())
    headers = _headers(body, decode) if any(r.headers for r in body.records) else None
    now = int(time.time() * 1000)
    stamps = pa.array(
        [now if r.timestamp_ms is None else r.timestamp_ms for r in body.records], type=pa.int64()
    )
    order = np.argsort(partitions, kind="stable")
    bounds = np.flatnonzero(np.diff(partitions[order])) + 1
    out: dict[int, list[bytes]] = {}
    for group in np.split(order, bounds):
        take = pa.array(group)
        out[int(partitions[group[0]])] = [
            build_batch(
                value_array.take(take),
                keys=key_array.take(take),
                timestamps=stamps.take(take),
                headers=None if headers is None else headers.take(take),
            )
        ]
    return out


def _offsets(result: PartitionProduceResult, count: int) -> PartitionOffsets:
    if result.error is not None:
        return PartitionOffsets(
            partition=result.partition, record_count=count, error=error_info(result.error)[1]
        )
    assert result.result is not None
    return PartitionOffsets(
        partition=result.partition,
        record_count=count,
        base_offset=result.result.base_offsets[0],
        last_offset=result.result.last_offset,
    )


@router.post("/{name}/records", response_model=ProduceResult)
async def produce_records(
    name: str, body: ProduceRecords, broker: Broker, request: Request
) -> ProduceResult:
    """Appends the records; per-partition failures are reported in the result.

    When every partition fails, the request fails with the first partition's error.
    """
    if len(body.records) > MAX_RECORDS:
        raise ApiError(
            413,
            "MESSAGE_TOO_LARGE",
            f"{len(body.records)} records; at most {MAX_RECORDS} per request",
        )
    topic = await broker.topic(name)
    decode = _decoder(body.encoding)
    keys = _decode([r.key for r in body.records], decode, "key")
    values = _decode([r.value for r in body.records], decode, "value")
    partitions = _partitions(body, keys, topic.partitions, name, request.app.state.round_robin)
    batches = _batches(body, keys, values, partitions, decode)
    counts = np.bincount(partitions)
    results = await broker.produce(name, batches, ACKS[body.acks])
    if all(r.error is not None for r in results):
        raise results[0].error  # type: ignore[misc]
    entries = sorted(
        (_offsets(r, int(counts[r.partition])) for r in results), key=lambda e: e.partition
    )
    return ProduceResult(topic=name, record_count=len(body.records), partitions=entries)
