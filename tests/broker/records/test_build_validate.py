"""Building batches and reading them back: every codec, both builders, record sets."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest
from hypothesis import given, settings
from streamhouse.broker.records import (
    ARROW_SCHEMA,
    BatchTooLargeError,
    Compression,
    Record,
    RecordBatchBuilder,
    TruncatedBatchError,
    batches_to_arrow,
    build_batch,
    decompress_records,
    iter_records,
    split_batches,
    validate_batch,
)

from tests.broker.records.conftest import encode_record, records_st

CODECS = list(Compression)
HEADERS = [("trace", b"abc"), ("empty", b""), ("nothing", None), ("ünï", b"\x00\xff")]


def sample() -> tuple[list[bytes | None], list[bytes | None], list[int], list]:
    values = [b"value-%d" % i * (i + 1) for i in range(5)] + [None, b""]
    keys = [b"k0", None, b"", b"k3", b"k4" * 50, b"k5", None]
    timestamps = [1_700_000_000_000, 1_699_999_999_000, 1_700_000_005_000, 0, 5, 6, 7]
    headers = [HEADERS, [], [("a", None)], [], HEADERS[:1], [], [("z", b"z")]]
    return values, keys, timestamps, headers


def expected_records(base: int = 0) -> list[Record]:
    values, keys, timestamps, headers = sample()
    return [
        Record(base + i, timestamps[i], keys[i], values[i], tuple(headers[i]))
        for i in range(len(values))
    ]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_build_batch_round_trips_every_codec(codec: Compression) -> None:
    values, keys, timestamps, headers = sample()
    batch = build_batch(values, keys, timestamps, headers, compression=codec, base_offset=10)
    header = validate_batch(batch)
    assert header.compression == codec
    assert header.record_count == 7 and header.last_offset_delta == 6
    assert header.base_timestamp == timestamps[0]  # Kafka: the first record's timestamp
    assert header.max_timestamp == max(timestamps)
    assert list(iter_records(batch)) == expected_records(10)
    section = decompress_records(batch)
    assert section == b"".join(
        encode_record(i, keys[i], values[i], headers[i], timestamps[i] - timestamps[0])
        for i in range(7)
    )


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_builder_matches_build_batch(codec: Compression) -> None:
    values, keys, timestamps, headers = sample()
    builder = RecordBatchBuilder(codec, base_offset=3, producer_id=9, producer_epoch=1)
    assert len(builder) == 0
    for v, k, t, h in zip(values, keys, timestamps, headers, strict=True):
        builder.append(v, key=k, timestamp=t, headers=h)
    assert len(builder) == 7
    batch = builder.build()
    assert batch == build_batch(
        values,
        keys,
        timestamps,
        headers,
        compression=codec,
        base_offset=3,
        producer_id=9,
        producer_epoch=1,
    )
    assert list(iter_records(batch)) == expected_records(3)
    uncompressed = build_batch(values, keys, timestamps, headers)
    assert builder.size_estimate() >= len(uncompressed)


def test_builder_defaults_timestamp_to_now_and_size_estimate_grows() -> None:
    builder = RecordBatchBuilder()
    before = time.time_ns() // 1_000_000
    sizes = [builder.size_estimate()]
    for i in range(3):
        builder.append(b"x" * 100, key=b"k%d" % i)
        sizes.append(builder.size_estimate())
    after = time.time_ns() // 1_000_000
    assert sizes == sorted(sizes) and sizes[-1] - sizes[0] >= 300
    records = list(iter_records(builder.build()))
    assert all(before <= r.timestamp <= after for r in records)


def test_builder_rejects_wrong_types_and_empty_build() -> None:
    builder = RecordBatchBuilder()
    with pytest.raises(TypeError, match="value must be bytes"):
        builder.append("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key must be bytes"):
        builder.append(b"v", key=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timestamp"):
        builder.append(b"v", timestamp=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="header key"):
        builder.append(b"v", headers=[(b"bytes-key", b"v")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="header value"):
        builder.append(b"v", headers=[("k", "text")])  # type: ignore[list-item]
    assert len(builder) == 0
    with pytest.raises(ValueError, match="at least one record"):
        builder.build()


def test_build_batch_input_errors() -> None:
    with pytest.raises(ValueError, match="at least one record"):
        build_batch([])
    with pytest.raises(ValueError, match="2 keys for 3 values"):
        build_batch([b"a", b"b", b"c"], keys=[b"1", b"2"])
    with pytest.raises(ValueError, match="2 timestamps for 3 records"):
        build_batch([b"a", b"b", b"c"], timestamps=[1, 2])
    with pytest.raises(ValueError, match="header lists"):
        build_batch([b"a", b"b"], headers=[[]])
    with pytest.raises(TypeError, match="values must hold bytes"):
        build_batch([b"a", 3])
    with pytest.raises(TypeError, match="binary or string array"):
        build_batch(pa.array([1, 2]))
    with pytest.raises(ValueError, match="header keys must be strings"):
        build_batch([b"a"], headers=[[(None, b"x")]])


def test_build_batch_timestamp_forms() -> None:
    assert {r.timestamp for r in iter_records(build_batch([b"a", b"b"], timestamps=77))} == {77}
    before = time.time_ns() // 1_000_000
    stamps = [r.timestamp for r in iter_records(build_batch([b"a", b"b"]))]
    assert stamps[0] == stamps[1] and before <= stamps[0] <= time.time_ns() // 1_000_000
    arrow_ts = pa.array([5_000, 1_000], pa.timestamp("ms"))
    assert [r.timestamp for r in iter_records(build_batch([b"a", b"b"], timestamps=arrow_ts))] == [
        5_000,
        1_000,
    ]
    with pytest.raises(ValueError, match="nulls"):
        build_batch([b"a"], timestamps=pa.array([None], pa.int64()))


def test_build_batch_from_arrow_columns_round_trips_through_arrow() -> None:
    values, keys, timestamps, headers = sample()
    first = batches_to_arrow([build_batch(values, keys, timestamps, headers)], partition=0)
    table = first.slice(1, 5)  # sliced arrays exercise Arrow's offsets
    rebuilt = build_batch(
        table.column("value"),
        keys=table.column("key"),
        timestamps=table.column("timestamp"),
        headers=table.column("headers"),
    )
    again = batches_to_arrow([rebuilt], partition=0)
    assert again.schema == ARROW_SCHEMA
    assert again.drop_columns(["offset"]).equals(table.drop_columns(["offset"]))
    assert again.column("offset").to_pylist() == [0, 1, 2, 3, 4]


def test_strings_are_encoded_as_utf8_from_arrow() -> None:
    batch = build_batch(pa.array(["héllo", None]), keys=pa.array(["k", "ключ"], pa.large_string()))
    assert [(r.key, r.value) for r in iter_records(batch)] == [
        (b"k", "héllo".encode()),
        ("ключ".encode(), None),
    ]


def test_builder_output_validates_against_max_batch_bytes() -> None:
    batch = build_batch([b"x" * 1000])
    assert validate_batch(batch, max_batch_bytes=len(batch)).size == len(batch)
    with pytest.raises(BatchTooLargeError, match=f"{len(batch)} bytes exceeds"):
        validate_batch(batch, max_batch_bytes=len(batch) - 1)


def test_split_batches_returns_headers_and_zero_copy_views() -> None:
    batches = [
        build_batch([b"a"], base_offset=0),
        build_batch([b"b", b"c"], compression=Compression.ZSTD),
        build_batch([b"d"] * 3, compression=Compression.SNAPPY),
    ]
    record_set = b"".join(batches)
    parts = split_batches(record_set)
    assert [h.record_count for h, _ in parts] == [1, 2, 3]
    assert [bytes(view) for _, view in parts] == batches
    assert all(isinstance(view, memoryview) for _, view in parts)
    assert split_batches(b"") == []
    assert split_batches(bytearray(record_set))[2][0].compression == Compression.SNAPPY


def test_split_batches_rejects_a_trailing_partial_batch() -> None:
    batches = [build_batch([b"a"]), build_batch([b"b"])]
    record_set = b"".join(batches)
    for cut in range(1, len(batches[1])):
        with pytest.raises(TruncatedBatchError, match=f"batch 1 at byte {len(batches[0])}"):
            split_batches(record_set[: len(record_set) - cut])


def test_split_batches_names_the_bad_batch_and_applies_the_limit() -> None:
    good = build_batch([b"a"])
    bad = bytearray(build_batch([b"b"]))
    bad[-1] ^= 1
    with pytest.raises(Exception, match=f"batch 1 at byte {len(good)}.*CRC32C") as info:
        split_batches(good + bytes(bad))
    assert type(info.value).__name__ == "CorruptBatchError"
    big = build_batch([b"x" * 500])
    with pytest.raises(BatchTooLargeError, match="batch 1"):
        split_batches(good + big, max_batch_bytes=len(big) - 1)


@settings(max_examples=40, deadline=None)
@given(records=records_st)
def test_random_records_round_trip(records: list) -> None:
    keys = [r[0] for r in records]
    values = [r[1] for r in records]
    headers = [r[2] for r in records]
    timestamps = [r[3] for r in records]
    batch = build_batch(values, keys, timestamps, headers, compression=Compression.LZ4)
    assert list(iter_records(batch)) == [
        Record(i, timestamps[i], keys[i], values[i], tuple(headers[i])) for i in range(len(values))
    ]
