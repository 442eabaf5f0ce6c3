"""batches_to_arrow against the independent Python decoder (iter_records), batch by batch."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamhouse.broker.records import (
    ARROW_SCHEMA,
    Compression,
    TimestampType,
    batches_to_arrow,
    build_batch,
    iter_records,
    parse_header,
    set_base_offset,
)

from tests.broker.records.conftest import make_batch, records_st, restamp


def rows_from_iter(batches: list[bytes], partition: int) -> list[dict]:
    """What batches_to_arrow should return, computed with the pure-Python decoder."""
    rows = []
    for batch in batches:
        if parse_header(batch).is_control:
            continue
        for r in iter_records(batch):
            rows.append(
                {
                    "partition": partition,
                    "offset": r.offset,
                    "timestamp": dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=r.timestamp),
                    "key": r.key,
                    "value": r.value,
                    "headers": [{"key": k, "value": v} for k, v in r.headers],
                }
            )
    return rows


def build(records: list, codec: Compression, base_offset: int = 0) -> bytes:
    return build_batch(
        [r[1] for r in records],
        [r[0] for r in records],
        [r[3] for r in records],
        [r[2] for r in records],
        compression=codec,
        base_offset=base_offset,
    )


def check(batches: list[bytes], partition: int = 0) -> pa.RecordBatch:
    result = batches_to_arrow(batches, partition)
    assert result.schema == ARROW_SCHEMA
    result.validate(full=True)
    assert result.to_pylist() == rows_from_iter(batches, partition)
    return result


def test_schema() -> None:
    assert ARROW_SCHEMA.names == ["partition", "offset", "timestamp", "key", "value", "headers"]
    assert ARROW_SCHEMA.field("partition").type == pa.int32()
    assert ARROW_SCHEMA.field("offset").type == pa.int64()
    assert ARROW_SCHEMA.field("timestamp").type == pa.timestamp("ms")
    assert ARROW_SCHEMA.field("key").type == pa.binary()
    assert ARROW_SCHEMA.field("value").type == pa.binary()
    header = ARROW_SCHEMA.field("headers").type.value_type
    assert [(f.name, f.type) for f in header] == [("key", pa.string()), ("value", pa.binary())]


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(
        st.tuples(records_st, st.sampled_from(list(Compression))), min_size=1, max_size=5
    ),
    partition=st.integers(0, 2**31 - 1),
)
def test_random_batches_match_iter_records(batches: list, partition: int) -> None:
    built = []
    offset = 1000
    for records, codec in batches:
        built.append(build(records, codec, base_offset=offset))
        offset += len(records)
    result = check(built, partition)
    assert result.column("offset").to_pylist() == list(range(1000, offset))


def test_base_offset_rewrite_is_reflected_and_offsets_continue() -> None:
    a = build_batch([b"a0", b"a1", b"a2"], timestamps=1)
    b = build_batch([b"b0", b"b1"], keys=[b"k", None], compression=Compression.ZSTD, timestamps=2)
    stamped = [set_base_offset(a, 500), set_base_offset(b, 503)]
    result = check(stamped, partition=7)
    assert result.column("offset").to_pylist() == [500, 501, 502, 503, 504]
    assert result.column("value").to_pylist() == [b"a0", b"a1", b"a2", b"b0", b"b1"]
    assert result.column("partition").to_pylist() == [7] * 5


def test_nulls_become_arrow_nulls() -> None:
    batch = build_batch(
        [None, b"", b"v", None], keys=[b"", None, None, b"k"], headers=[[("h", None)], [], [], []]
    )
    result = check([batch])
    assert result.column("value").null_count == 2
    assert result.column("key").null_count == 2
    assert result.column("key").to_pylist() == [b"", None, None, b"k"]
    assert result.column("headers").to_pylist()[0] == [{"key": "h", "value": None}]


def control_batch(base_offset: int) -> bytes:
    """A transaction COMMIT marker, as a coordinator writes it."""
    marker = build_batch(
        [b"\x00\x00\x00\x00\x00\x00"],
        keys=[b"\x00\x00\x00\x01"],  # version 0, type 1 (commit)
        timestamps=5,
        base_offset=base_offset,
        producer_id=4,
        producer_epoch=0,
        is_transactional=True,
    )
    header = parse_header(marker)
    return restamp(marker, attributes=header.attributes | 0x20)


def test_control_batches_are_skipped() -> None:
    data = [build_batch([b"x", b"y"], base_offset=0), build_batch([b"z"], base_offset=3)]
    marker = control_batch(2)
    assert parse_header(marker).is_control
    assert [r.key for r in iter_records(marker)] == [b"\x00\x00\x00\x01"]
    result = check([data[0], marker, data[1]])
    assert result.column("offset").to_pylist() == [0, 1, 3]
    assert batches_to_arrow([marker], 0).num_rows == 0


def test_log_append_time_uses_max_timestamp() -> None:
    batch = build_batch(
        [b"a", b"b"], timestamps=[10, 20], timestamp_type=TimestampType.LOG_APPEND_TIME
    )
    batch = restamp(batch, max_timestamp=99_000)  # the broker stamps its own time
    result = check([batch])
    assert result.column("timestamp").cast(pa.int64()).to_pylist() == [99_000, 99_000]


def test_empty_inputs() -> None:
    empty = batches_to_arrow([], 3)
    assert empty.num_rows == 0 and empty.schema == ARROW_SCHEMA
    compacted = make_batch(b"", record_count=0, last_offset_delta=4)  # all records cleaned
    assert batches_to_arrow([compacted], 0).num_rows == 0
    assert list(iter_records(compacted)) == []


def test_big_and_small_batches_mixed_keep_order() -> None:
    # Sections of 32 KiB and more are walked in place; smaller ones are joined per kernel call.
    big = [b"B" * 5000] * 10
    batches = []
    offset = 0
    for i in range(12):
        values = big if i % 3 == 0 else [b"s%d" % i, b"t%d" % i]
        codec = Compression.LZ4 if i % 4 == 1 else Compression.NONE
        batches.append(build_batch(values, base_offset=offset, compression=codec, timestamps=i))
        offset += len(values)
    result = check(batches)
    assert result.column("offset").to_pylist() == list(range(offset))
    assert result.num_rows == offset


def test_accepts_buffers_of_any_kind() -> None:
    batch = build_batch([b"v"], keys=[b"k"], timestamps=3)
    for form in (bytearray(batch), memoryview(batch), memoryview(b"xx" + batch)[2:]):
        assert batches_to_arrow([form], 1).to_pylist() == rows_from_iter([batch], 1)


@pytest.mark.parametrize("codec", list(Compression), ids=lambda c: c.name)
def test_large_values_all_codecs(codec: Compression) -> None:
    values = [bytes([i % 251]) * (i * 37 % 3000) for i in range(200)]
    batch = build_batch(values, compression=codec, timestamps=list(range(200)))
    assert check([batch]).column("value").to_pylist() == values
