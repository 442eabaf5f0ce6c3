"""Fixtures for partition-log tests: a log manager on real local files, and batch factories."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from streamhouse.broker.log import LogConfig, LogManager
from streamhouse.broker.records import build_batch, iter_records

MakeBatch = Callable[..., bytes]


@pytest.fixture
def make_batch() -> MakeBatch:
    """Builds a batch of ``count`` records whose values are ``{prefix}-{i}``."""

    def make(
        count: int = 10, prefix: str = "v", timestamp: int | None = None, key: bytes | None = None
    ) -> bytes:
        values = [f"{prefix}-{i}".encode() for i in range(count)]
        keys = [key] * count if key is not None else None
        ts = timestamp if timestamp is not None else int(time.time() * 1000)
        return build_batch(values, keys=keys, timestamps=ts)

    return make


def record_values(batches: list[bytes], start: int = 0) -> list[tuple[int, bytes | None]]:
    """(offset, value) of every record at or after ``start``: tests compare these exactly."""
    return [
        (record.offset, record.value)
        for batch in batches
        for record in iter_records(batch)
        if record.offset >= start
    ]


@pytest.fixture
def values_of() -> Callable[..., list[tuple[int, bytes | None]]]:
    return record_values


@pytest.fixture
def log_config(tmp_path: Path) -> LogConfig:
    return LogConfig(
        data_dir=tmp_path / "agent",
        agent_id="agent-a",
        seal_check_interval_ms=10,
        lease_ttl_ms=10_000,
    )


@pytest.fixture
def shared_urls(tmp_path: Path) -> tuple[str, str]:
    """Metadata and object store shared by several agents of one test cluster."""
    return f"sqlite:///{tmp_path / 'meta.db'}", f"file://{tmp_path / 'objects'}"


@pytest.fixture
async def manager(log_config: LogConfig, shared_urls: tuple[str, str]) -> AsyncIterator[LogManager]:
    meta, objects = shared_urls
    mgr = await LogManager.open(log_config, metadata_url=meta, object_store_url=objects)
    yield mgr
    await mgr.close()


@pytest.fixture
def reopen(log_config: LogConfig, shared_urls: tuple[str, str]) -> Callable[..., object]:
    """Opens another manager on the same data dir (a restart), optionally with changes."""

    async def open_again(**changes: object) -> LogManager:
        meta, objects = shared_urls
        return await LogManager.open(
            replace(log_config, **changes), metadata_url=meta, object_store_url=objects
        )

    return open_again
