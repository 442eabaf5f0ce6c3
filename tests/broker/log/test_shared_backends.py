"""The log on the shared backends a cluster uses: PostgreSQL metadata and S3 (moto over HTTP)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from streamhouse.broker.log import Acks, LogConfig, LogManager
from streamhouse.broker.storage import open_object_store


@pytest.fixture
async def cluster_urls(
    postgres_url: str, s3_endpoint: str, s3_bucket: str
) -> AsyncIterator[tuple[str, str]]:
    schema = f"sh_log_{uuid.uuid4().hex[:10]}"
    yield (
        f"{postgres_url}?schema={schema}",
        f"s3://{s3_bucket}/cluster?endpoint={s3_endpoint}&region=us-east-1",
    )
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def test_round_trip_restart_and_retention_on_postgres_and_s3(
    tmp_path: Path, cluster_urls: tuple[str, str], make_batch, values_of
) -> None:
    meta, objects = cluster_urls
    config = LogConfig(data_dir=tmp_path / "a", agent_id="pg-agent", seal_check_interval_ms=10)
    manager = await LogManager.open(config, metadata_url=meta, object_store_url=objects)
    try:
        await manager.create_topic("orders", partitions=2)
        await manager.update_topic_config("orders", {"segment.ms": 10})
        plog = await manager.partition("orders", 1)
        await plog.append([make_batch(5, "one")], acks=Acks.ALL)
        await plog.flush()
        await plog.append([make_batch(5, "two")], acks=Acks.ALL)
    finally:
        await manager.close()
    # A different data dir: nothing local survives, everything comes back from PG + S3.
    fresh = replace(config, data_dir=tmp_path / "fresh")
    manager = await LogManager.open(fresh, metadata_url=meta, object_store_url=objects)
    try:
        plog = await manager.partition("orders", 1)
        assert plog.high_watermark == 10
        got = values_of(await plog.read(0))
        assert [o for o, _ in got] == list(range(10))
        assert got[0][1] == b"one-0" and got[5][1] == b"two-0"
        store = open_object_store(objects)
        keys = [info.key for info in await store.list("")]
        await store.close()
        segment_keys = sorted(s.object_key for s in plog.segments)
        # Companions (written in the background, maybe not yet) only ever sit next to segments.
        assert sorted(k for k in keys if not k.endswith(".parquet")) == segment_keys
        assert {k.removesuffix(".parquet") for k in keys if k.endswith(".parquet")} <= set(
            segment_keys
        )
    finally:
        await manager.close()


async def test_two_agents_on_postgres_one_is_fenced(
    tmp_path: Path, cluster_urls: tuple[str, str], make_batch, values_of
) -> None:
    meta, objects = cluster_urls
    base = LogConfig(data_dir=tmp_path / "a", agent_id="agent-a", lease_ttl_ms=300)
    a = await LogManager.open(base, metadata_url=meta, object_store_url=objects)
    await a.create_topic("shared", partitions=1)
    await a.update_topic_config("shared", {"segment.ms": 3_600_000})
    plog_a = await a.partition("shared", 0)
    await plog_a.append([make_batch(3, "from-a")])
    for task in a._tasks:  # agent A stalls: no more lease renewals
        task.cancel()
    await asyncio.sleep(0.5)
    b = await LogManager.open(
        replace(base, data_dir=tmp_path / "b", agent_id="agent-b"),
        metadata_url=meta,
        object_store_url=objects,
    )
    try:
        plog_b = await b.partition("shared", 0)
        await plog_b.append([make_batch(2, "from-b")], acks=Acks.LEADER)
        await plog_b.flush()
        await plog_a.flush()
        assert plog_a.fenced
        segments = await b.metadata.list_segments("shared", 0)
        assert [(s.base_offset, s.last_offset, s.writer_epoch) for s in segments] == [
            (0, 1, plog_b.epoch)
        ]
        assert [v for _, v in values_of(await plog_b.read(0))] == [b"from-b-0", b"from-b-1"]
    finally:
        await b.close()
        a._tasks = []
        await a.close()
