"""Columnar companions: written after a segment commits, deleted with it, never fatal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from streamhouse.broker.log import Acks, LogConfig, LogManager
from streamhouse.broker.log.companion import (
    COMPANION_WRITES,
    companion_key,
    encode_companion,
    read_companion,
)
from streamhouse.broker.metadata import open_metadata_store
from streamhouse.broker.records import ARROW_SCHEMA, batches_to_arrow, build_batch
from streamhouse.broker.storage import LocalObjectStore


class CompanionTroubleStore(LocalObjectStore):
    """A local store whose puts of companions fail, or wait until released."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.fail = False
        self.gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()

    async def put(self, key: str, data: bytes) -> None:
        if key.endswith(".parquet"):
            if self.fail:
                raise OSError("companion put refused")
            if self.gate is not None:
                self.waiting.set()
                await self.gate.wait()
        await super().put(key, data)


@pytest.fixture
def store(tmp_path: Path) -> CompanionTroubleStore:
    return CompanionTroubleStore(tmp_path / "objects")


@pytest.fixture
async def manager(tmp_path: Path, store: CompanionTroubleStore) -> AsyncIterator[LogManager]:
    config = LogConfig(data_dir=tmp_path / "agent", agent_id="agent-a", seal_check_interval_ms=10)
    mgr = LogManager(config, open_metadata_store(f"sqlite:///{tmp_path / 'meta.db'}"), store)
    await mgr.start()
    yield mgr
    await mgr.close()


def batch(n: int, prefix: str, timestamp: int) -> bytes:
    values = [f"{prefix}-{i}".encode() for i in range(n)]
    keys = [f"k{i % 3}".encode() for i in range(n)]
    return build_batch(values, keys=keys, timestamps=timestamp)


async def keys_in(manager: LogManager) -> set[str]:
    return {info.key for info in await manager.store.list("")}


async def test_companion_is_written_after_commit_with_the_segment_rows(manager):
    await manager.create_topic("t", 2)
    plog = await manager.partition("t", 1)
    batches = [batch(10, "a", 1_000), batch(5, "b", 2_000)]
    await plog.append(batches, acks=Acks.ALL)  # acks=all without a WAL sync waits for a commit
    await plog.flush()
    await plog.companions.drain()
    [segment] = plog.segments
    data = await manager.store.get(companion_key(segment.object_key))
    got = read_companion(data, 0, 15)
    assert got.schema == ARROW_SCHEMA
    assert got.equals(batches_to_arrow(await plog.read(0), 1))
    assert got.column("partition").to_pylist() == [1] * 15


def test_row_groups_outside_the_offsets_or_times_are_not_read(monkeypatch):
    monkeypatch.setattr("streamhouse.broker.log.companion.ROW_GROUP_ROWS", 10)
    stamped = [  # offsets 10b..10b+9, timestamps 1000b + i
        build_batch([b"v"] * 10, timestamps=[1000 * b + i for i in range(10)], base_offset=10 * b)
        for b in range(3)
    ]
    data = encode_companion(stamped, 0)
    assert read_companion(data, 12, 18).column("offset").to_pylist() == list(range(10, 20))
    assert read_companion(data, 0, 30, time_min_ms=2000).column("offset")[0].as_py() == 20
    assert read_companion(data, 0, 30, time_max_ms=1000).num_rows == 10
    assert read_companion(data, 30, 40).num_rows == 0


async def test_retention_and_delete_records_delete_companions(manager):
    await manager.create_topic("old", 1)
    await manager.update_topic_config("old", {"segment.ms": 10})
    plog = await manager.partition("old", 0)
    now = int(time.time() * 1000)
    for i, ts in enumerate((now - 3_600_000, now - 3_600_000, now)):
        await plog.append([batch(5, f"s{i}", ts)], acks=Acks.ALL)
        await plog.flush()
    await plog.companions.drain()
    first, second, third = (s.object_key for s in plog.segments)
    assert {companion_key(k) for k in (first, second, third)} <= await keys_in(manager)
    await plog.delete_records(5)
    remaining = await keys_in(manager)
    assert first not in remaining and companion_key(first) not in remaining
    await manager.update_topic_config("old", {"retention.ms": 60_000})
    assert await manager.apply_retention() == 1
    assert await keys_in(manager) == {third, companion_key(third)}


async def test_a_failing_companion_put_fails_neither_produce_nor_commit(manager, store):
    store.fail = True
    errors = COMPANION_WRITES.labels(outcome="error")
    before = errors._value.get()
    await manager.create_topic("t", 1)
    plog = await manager.partition("t", 0)
    result = await plog.append([batch(4, "x", 1_000)], acks=Acks.ALL)
    assert result.last_offset == 3
    await plog.flush()
    await plog.companions.drain()
    assert plog.committed_offset == 4
    [segment] = plog.segments
    assert await keys_in(manager) == {segment.object_key}
    assert errors._value.get() == before + 1
    values = batches_to_arrow(await plog.read(0), 0).column("value").to_pylist()
    assert values == [f"x-{i}".encode() for i in range(4)]


async def test_a_stalled_companion_put_does_not_hold_acknowledgements(manager, store):
    store.gate = asyncio.Event()
    await manager.create_topic("t", 1)
    plog = await manager.partition("t", 0)
    await plog.append([batch(3, "a", 1_000)], acks=Acks.ALL)
    await plog.flush()
    await asyncio.wait_for(store.waiting.wait(), 5)  # the companion put hangs...
    async with asyncio.timeout(5):  # ...while the next segment is acknowledged and committed
        await plog.append([batch(3, "b", 2_000)], acks=Acks.ALL)
        await plog.flush()
    assert plog.committed_offset == 6
    store.gate.set()
    await plog.companions.drain()
    assert {companion_key(s.object_key) for s in plog.segments} <= await keys_in(manager)


async def test_a_companion_finished_after_its_segment_was_deleted_is_removed(manager, store):
    store.gate = asyncio.Event()
    await manager.create_topic("t", 1)
    plog = await manager.partition("t", 0)
    await plog.append([batch(3, "a", 1_000)], acks=Acks.ALL)
    await plog.flush()
    await asyncio.wait_for(store.waiting.wait(), 5)
    await plog.append([batch(3, "b", 2_000)], acks=Acks.ALL)
    await plog.flush()
    first = plog.segments[0].object_key
    await plog.delete_records(3)
    store.gate.set()
    await plog.companions.drain()
    remaining = await keys_in(manager)
    assert first not in remaining and companion_key(first) not in remaining
    assert companion_key(plog.segments[0].object_key) in remaining
