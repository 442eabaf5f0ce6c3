"""Fetched batches decode to exactly the records from the position on, as Arrow or objects."""

from __future__ import annotations

import crc32c
import pyarrow as pa
import pytest
from streamhouse.broker.client.decode import CONSUMER_SCHEMA, decode_fetched, records_from_table
from streamhouse.broker.client.models import ConsumerRecord
from streamhouse.broker.records import Compression, RecordBatchError, build_batch, set_base_offset


def stored(base_offset: int, values, **kwargs) -> bytes:
    return set_base_offset(build_batch(values, **kwargs), base_offset)


def control_batch(base_offset: int) -> bytes:
    """A transaction marker: not data, but it occupies an offset."""
    raw = bytearray(stored(base_offset, [b"\x00\x00\x00\x00"], keys=[b"\x00\x00\x00\x00"]))
    attributes = int.from_bytes(raw[21:23], "big") | 0x20 | 0x10
    raw[21:23] = attributes.to_bytes(2, "big")
    raw[17:21] = crc32c.crc32c(bytes(raw[21:])).to_bytes(4, "big")
    return bytes(raw)


def test_records_before_the_position_are_cut_off() -> None:
    batches = [
        stored(10, [b"a", b"b", b"c"], keys=[b"k", None, b"k"], timestamps=[1, 2, 3]),
        stored(13, [b"d", None], headers=[[("h", b"1"), ("n", None)], []], timestamps=5),
    ]
    table, next_position = decode_fetched("events", 4, batches, 12)
    assert table.schema == CONSUMER_SCHEMA
    assert next_position == 15
    assert table.column("offset").to_pylist() == [12, 13, 14]
    assert table.column("topic").to_pylist() == ["events"] * 3
    assert table.column("partition").to_pylist() == [4, 4, 4]
    assert records_from_table(table) == [
        ConsumerRecord("events", 4, 12, 3, b"k", b"c", ()),
        ConsumerRecord("events", 4, 13, 5, None, b"d", (("h", b"1"), ("n", None))),
        ConsumerRecord("events", 4, 14, 5, None, None, ()),
    ]


@pytest.mark.parametrize("codec", list(Compression))
def test_every_codec_decodes(codec: Compression) -> None:
    values = [b"x" * i for i in range(50)]
    table, _ = decode_fetched("t", 0, [stored(0, values, compression=codec)], 0)
    assert table.column("value").to_pylist() == values


def test_nothing_fetched_keeps_the_position() -> None:
    table, next_position = decode_fetched("t", 0, [], 42)
    assert table.num_rows == 0 and next_position == 42
    assert records_from_table(table) == []


def test_control_batches_advance_the_position_without_records() -> None:
    batches = [stored(0, [b"a"]), control_batch(1), stored(2, [b"b"])]
    table, next_position = decode_fetched("t", 0, batches, 0)
    assert table.column("offset").to_pylist() == [0, 2]
    assert next_position == 3
    only_marker, after = decode_fetched("t", 0, [control_batch(7)], 7)
    assert only_marker.num_rows == 0 and after == 8


def test_a_position_past_everything_fetched_gives_no_records() -> None:
    table, next_position = decode_fetched("t", 0, [stored(0, [b"a", b"b"])], 5)
    assert table.num_rows == 0 and next_position == 5


def test_a_corrupt_batch_is_an_error_not_silently_skipped() -> None:
    good = stored(0, [b"hello"])
    corrupt = good[:-1] + bytes([good[-1] ^ 0xFF])
    with pytest.raises(RecordBatchError):
        decode_fetched("t", 0, [corrupt], 0)


def test_tables_of_several_partitions_concatenate() -> None:
    a, _ = decode_fetched("t", 0, [stored(0, [b"a"])], 0)
    b, _ = decode_fetched("u", 3, [stored(9, [b"b"])], 9)
    both = pa.concat_tables([a, b])
    records = records_from_table(both)
    assert [(r.topic, r.partition, r.offset, r.value) for r in records] == [
        ("t", 0, 0, b"a"),
        ("u", 3, 9, b"b"),
    ]
