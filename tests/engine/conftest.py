"""A real log manager on local files, filled with records whose rows the tests know exactly.

``events`` has 3 partitions; each holds 5 committed segments of 20 records (one batch each,
timestamps ``T0 + 1000 * segment + i``) and an in-memory tail of 20 more. ``expected`` is the same
rows built directly as an Arrow table, the oracle every scan is compared with.

Every committed segment gets a columnar companion in the background; ``produced`` runs each test
twice on the same rows, once reading the companions and once with them deleted (decoding the
segments), so both paths are held to the same oracle.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from streamhouse.broker.log import LogConfig, LogManager
from streamhouse.broker.metadata import TopicConfig
from streamhouse.broker.records import ARROW_SCHEMA, build_batch

T0 = 1_700_000_000_000
PARTITIONS = 3
SEGMENTS = 5
PER_BATCH = 20


@dataclass
class Produced:
    manager: LogManager
    topic: str
    expected: pa.Table  # every row, ordered by partition then offset
    companions: bool = True  # whether the committed segments have their companions


def rows_of(partition: int, batch: int) -> dict[str, list]:
    """The records of one batch: keys k0..k3 with some nulls, one value that is not UTF-8."""
    n = PER_BATCH
    keys = [None if i % 7 == 0 else f"k{i % 4}".encode() for i in range(n)]
    values = [f'{{"p": {partition}, "b": {batch}, "i": {i}}}'.encode() for i in range(n)]
    values[n - 1] = b"\xff\xfe not utf-8"
    headers = [[("h", f"{i}".encode())] if i % 3 == 0 else [] for i in range(n)]
    return {
        "offset": [batch * n + i for i in range(n)],
        "timestamp": [T0 + 1000 * batch + i for i in range(n)],
        "key": keys,
        "value": values,
        "headers": headers,
    }


def batch_of(rows: dict[str, list]) -> bytes:
    return build_batch(
        rows["value"], keys=rows["key"], timestamps=rows["timestamp"], headers=rows["headers"]
    )


def table_of(partition: int, rows: dict[str, list]) -> pa.Table:
    headers = [[{"key": k, "value": v} for k, v in h] for h in rows["headers"]]
    return pa.table(
        {
            "partition": pa.array([partition] * len(rows["offset"]), pa.int32()),
            "offset": rows["offset"],
            "timestamp": pa.array(rows["timestamp"], pa.timestamp("ms")),
            "key": pa.array(rows["key"], pa.binary()),
            "value": pa.array(rows["value"], pa.binary()),
            "headers": headers,
        },
        schema=ARROW_SCHEMA,
    )


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[LogManager]:
    config = LogConfig(data_dir=tmp_path / "agent", agent_id="agent-a", seal_check_interval_ms=10)
    mgr = await LogManager.open(
        config,
        metadata_url=f"sqlite:///{tmp_path / 'meta.db'}",
        object_store_url=f"file://{tmp_path / 'objects'}",
    )
    yield mgr
    await mgr.close()


async def drop_companions(manager: LogManager) -> int:
    """Deletes every companion object (and its cached copy); returns how many there were."""
    doomed = [i.key for i in await manager.store.list("segments/") if i.key.endswith(".parquet")]
    for key in doomed:
        manager.cache.invalidate(key)
        await manager.store.delete(key)
    return len(doomed)


@pytest.fixture(params=["companions", "segments"])
async def produced(request: pytest.FixtureRequest, produced_base: Produced) -> Produced:
    """The topic read through the companions, then (second run) through the segments."""
    if request.param == "segments":
        return await segments_of(produced_base)
    return produced_base


@pytest.fixture
async def produced_segments(produced_base: Produced) -> Produced:
    """The topic with no companions: every committed segment is decoded."""
    return await segments_of(produced_base)


async def segments_of(produced: Produced) -> Produced:
    assert await drop_companions(produced.manager) == PARTITIONS * SEGMENTS
    produced.companions = False
    return produced


@pytest.fixture
async def produced_base(manager: LogManager) -> Produced:
    # One byte per segment: every append seals its own segment.
    await manager.create_topic("events", PARTITIONS, TopicConfig(segment_bytes=1))
    tables = []
    for p in range(PARTITIONS):
        plog = await manager.partition("events", p)
        for b in range(SEGMENTS):
            rows = rows_of(p, b)
            await plog.append([batch_of(rows)])
            await plog.wait_committed(plog.high_watermark)
            tables.append(table_of(p, rows))
    await manager.update_topic_config("events", {"segment.bytes": 64 * 1024 * 1024})
    for p in range(PARTITIONS):
        plog = await manager.partition("events", p)
        rows = rows_of(p, SEGMENTS)
        await plog.append([batch_of(rows)])
        assert plog.committed_offset == SEGMENTS * PER_BATCH  # the tail stays in memory
        assert len(plog.segments) == SEGMENTS
        tables.append(table_of(p, rows))
        await plog.companions.drain()
    expected = pa.concat_tables(tables).sort_by(
        [("partition", "ascending"), ("offset", "ascending")]
    )
    return Produced(manager, "events", expected)
