"""Helpers for the record-batch tests: hand-made batches and a hypothesis strategy for records.

The helpers build bytes independently of the code under test (plain ``struct`` and a Python
varint writer), so a test that crafts a hostile batch does not rely on our own builder. Test
modules import them as ``tests.broker.records.conftest`` (pytest registers conftest modules
under that name in importlib mode before it collects the tests beside them).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import crc32c
from hypothesis import strategies as st

HEADER = struct.Struct(">qiibIhiqqqhii")
FIELDS = (
    "base_offset",
    "batch_length",
    "partition_leader_epoch",
    "magic",
    "crc",
    "attributes",
    "last_offset_delta",
    "base_timestamp",
    "max_timestamp",
    "producer_id",
    "producer_epoch",
    "base_sequence",
    "record_count",
)


def varint(n: int) -> bytes:
    """Kafka's zigzag varint, written independently of the code under test."""
    u = (n << 1) ^ (n >> 63)
    u &= (1 << 64) - 1
    out = bytearray()
    while u > 0x7F:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def nullable(data: bytes | None) -> bytes:
    return varint(-1) if data is None else varint(len(data)) + data


def encode_record(
    offset_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] = (),
    ts_delta: int = 0,
) -> bytes:
    body = b"\x00" + varint(ts_delta) + varint(offset_delta) + nullable(key) + nullable(value)
    body += varint(len(headers))
    for name, payload in headers:
        body += nullable(name.encode()) + nullable(payload)
    return varint(len(body)) + body


def restamp(batch: bytes, *, fix_crc: bool = True, **fields: Any) -> bytes:
    """Rewrites header fields of ``batch`` by name and (by default) recomputes the CRC."""
    values = dict(zip(FIELDS, HEADER.unpack_from(batch), strict=True))
    values.update(fields)
    out = bytearray(batch)
    HEADER.pack_into(out, 0, *(values[name] for name in FIELDS))
    if fix_crc:
        struct.pack_into(">I", out, 17, crc32c.crc32c(bytes(out[21:])))
    return bytes(out)


def make_batch(section: bytes, **fields: Any) -> bytes:
    """A batch around a raw records section, with a correct length and CRC."""
    values: dict[str, Any] = {
        "base_offset": 0,
        "batch_length": 49 + len(section),
        "partition_leader_epoch": -1,
        "magic": 2,
        "crc": 0,
        "attributes": 0,
        "last_offset_delta": 0,
        "base_timestamp": 1_000,
        "max_timestamp": 1_000,
        "producer_id": -1,
        "producer_epoch": -1,
        "base_sequence": -1,
        "record_count": 1,
    }
    values.update(fields)
    raw = HEADER.pack(*(values[name] for name in FIELDS)) + section
    return restamp(raw) if "crc" not in fields else raw


# Records as (key, value, headers, timestamp) for hypothesis.
header_st = st.tuples(st.text(max_size=6), st.none() | st.binary(max_size=8))
record_st = st.tuples(
    st.none() | st.binary(max_size=20),
    st.none() | st.binary(max_size=40),
    st.lists(header_st, max_size=3),
    st.integers(min_value=0, max_value=2**41),
)
records_st = st.lists(record_st, min_size=1, max_size=12)
