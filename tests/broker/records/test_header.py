"""The 61-byte header: layout, parsed fields and properties, and base-offset rewriting."""

from __future__ import annotations

import struct

import pytest
from streamhouse.broker.records import (
    HEADER_SIZE,
    BatchHeader,
    Compression,
    TimestampType,
    TruncatedBatchError,
    UnsupportedCompressionError,
    UnsupportedMagicError,
    build_batch,
    iter_records,
    parse_header,
    set_base_offset,
    validate_batch,
)

from tests.broker.records.conftest import make_batch, restamp


def test_enums_match_kafka_ids() -> None:
    assert [c.value for c in Compression] == [0, 1, 2, 3, 4]
    assert [c.name for c in Compression] == ["NONE", "GZIP", "SNAPPY", "LZ4", "ZSTD"]
    assert TimestampType.CREATE_TIME == 0 and TimestampType.LOG_APPEND_TIME == 1
    assert HEADER_SIZE == 61


def test_parse_header_reads_every_field_at_its_kafka_position() -> None:
    raw = struct.pack(">qiibIhiqqqhii", 42, 49, 7, 2, 0xDEADBEEF, 0x33, 4, 1000, 2000, 99, 3, 17, 5)
    header = parse_header(raw)
    assert header == BatchHeader(42, 49, 7, 2, 0xDEADBEEF, 0x33, 4, 1000, 2000, 99, 3, 17, 5)
    assert header.size == 61
    assert header.last_offset == 46
    assert header.compression == Compression.LZ4
    assert header.is_transactional and header.is_control
    assert header.timestamp_type == TimestampType.CREATE_TIME
    assert parse_header(b"xx" + raw, 2) == header


def test_header_properties_from_built_batch() -> None:
    batch = build_batch(
        [b"a", b"b", b"c"],
        timestamps=[5, 9, 7],
        compression=Compression.GZIP,
        base_offset=100,
        producer_id=12,
        producer_epoch=3,
        base_sequence=40,
        is_transactional=True,
        timestamp_type=TimestampType.LOG_APPEND_TIME,
    )
    header = validate_batch(batch)
    assert (header.base_offset, header.last_offset_delta, header.last_offset) == (100, 2, 102)
    assert (header.base_timestamp, header.max_timestamp, header.record_count) == (5, 9, 3)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (12, 3, 40)
    assert header.compression == Compression.GZIP
    assert header.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert header.is_transactional and not header.is_control
    assert header.size == len(batch)


def test_parse_header_errors() -> None:
    batch = build_batch([b"x"])
    with pytest.raises(TruncatedBatchError):
        parse_header(batch[:16])
    with pytest.raises(TruncatedBatchError, match="shorter than the 61-byte header"):
        parse_header(batch[:60])
    with pytest.raises(UnsupportedMagicError, match="magic 1"):
        parse_header(restamp(batch, magic=1))
    with pytest.raises(UnsupportedMagicError, match="magic -1"):
        parse_header(restamp(batch, magic=-1))


def test_unknown_codec_in_header_property() -> None:
    header = parse_header(make_batch(b"", record_count=0, attributes=6))
    with pytest.raises(UnsupportedCompressionError, match="codec id 6"):
        _ = header.compression


def test_set_base_offset_rewrites_offsets_and_keeps_crc() -> None:
    batch = build_batch([b"a", b"b"], keys=[b"k", None], timestamps=7)
    moved = set_base_offset(batch, 1_000_000)
    assert isinstance(moved, bytes) and len(moved) == len(batch)
    assert moved[8:] == batch[8:]  # nothing but the base offset changes, CRC included
    header = validate_batch(moved)
    assert header.base_offset == 1_000_000 and header.crc == parse_header(batch).crc
    assert [r.offset for r in iter_records(moved)] == [1_000_000, 1_000_001]
    assert set_base_offset(bytearray(batch), 3)[:8] == (3).to_bytes(8, "big")
    assert set_base_offset(memoryview(batch), 3) == set_base_offset(batch, 3)


def test_set_base_offset_rejects_non_batches() -> None:
    with pytest.raises(TruncatedBatchError):
        set_base_offset(b"\x00" * 10, 1)
    with pytest.raises(UnsupportedMagicError):
        set_base_offset(restamp(build_batch([b"a"]), magic=0), 1)
