"""Helpers for the WAL tests: real RecordBatch v2 headers, built here so the WAL tests do not
depend on the record codec (the WAL reads only a few header fields itself)."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import crc32c
import pytest
from streamhouse.broker.wal import SyncPolicy, WalConfig, WriteAheadLog

# attributes, lastOffsetDelta, baseTimestamp, maxTimestamp, producerId, producerEpoch,
# baseSequence, recordsCount: everything after the CRC field up to the records.
_AFTER_CRC = struct.Struct(">hiqqqhii")
_BEFORE_CRC = struct.Struct(">qiiBI")  # baseOffset, batchLength, leaderEpoch, magic, crc


def make_batch(base_offset: int, count: int = 1, payload_size: int = 20) -> bytes:
    """A RecordBatch v2 holding offsets base_offset .. base_offset+count-1 (opaque payload)."""
    payload = bytes((base_offset + i) % 251 for i in range(payload_size))
    rest = _AFTER_CRC.pack(0, count - 1, 0, 0, -1, -1, -1, count) + payload
    length = 4 + 1 + 4 + len(rest)  # leaderEpoch, magic, crc, rest
    return _BEFORE_CRC.pack(base_offset, length, 0, 2, crc32c.crc32c(rest)) + rest


@pytest.fixture
def batch() -> Callable[..., bytes]:
    return make_batch


@pytest.fixture
def config(tmp_path: Path) -> WalConfig:
    """A small WAL: ~4 entries of the default test batch per file."""
    return WalConfig(
        directory=tmp_path / "wal",
        sync_policy=SyncPolicy.NEVER,
        sync_interval_ms=20,
        file_max_bytes=400,
        max_bytes=1024 * 1024,
    )


@pytest.fixture
async def wal(config: WalConfig) -> AsyncIterator[WriteAheadLog]:
    log = await WriteAheadLog.open(config)
    yield log
    await log.close()
