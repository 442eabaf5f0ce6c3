"""Random mutations of valid batches: correct data or a RecordBatchError, nothing else.

Three kinds of mutation: raw byte edits (the CRC must catch them unless they only touch the
fields outside it), edits with the CRC re-stamped (reaching the record walk), and edits to the
uncompressed records section that are re-compressed and re-stamped (reaching the walk through
every codec). Accepted batches are cross-checked: the compiled decoder (batches_to_arrow)
must agree with the pure-Python one (iter_records), and, when the records are in canonical
form, kafka-python's decoder must agree too.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch
from streamhouse.broker.records import (
    Compression,
    RecordBatchError,
    batches_to_arrow,
    build_batch,
    decompress_records,
    iter_records,
    parse_header,
    split_batches,
    validate_batch,
)
from streamhouse.broker.records.compression import compress

from tests.broker.records.conftest import make_batch, restamp

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def seed_batch(codec: Compression) -> bytes:
    return build_batch(
        [b"value-0", None, b"", b"v" * 40],
        keys=[b"k0", b"", None, b"k3"],
        timestamps=[1_000, 900, 5_000, 1_001],
        headers=[[("a", b"1"), ("b", None)], [], [("c", b"")], []],
        compression=codec,
        base_offset=50,
    )


SEEDS = {codec: seed_batch(codec) for codec in Compression}
SECTION = decompress_records(SEEDS[Compression.NONE])


def decode_all(batch: bytes) -> list | None:
    """Runs every reader; returns the records, or None if the batch was rejected."""
    try:
        header = validate_batch(batch)
    except RecordBatchError:
        if not batch:
            assert split_batches(batch) == []  # an empty record set is valid and empty
        for read in (
            lambda: list(iter_records(batch)),
            lambda: batches_to_arrow([batch], 0),
            lambda: split_batches(batch) if batch else validate_batch(batch),
        ):
            with pytest.raises(RecordBatchError):
                read()
        return None
    records = list(iter_records(batch))
    table = batches_to_arrow([batch], 0)
    table.validate(full=True)
    if header.is_control:
        assert table.num_rows == 0
    else:
        assert table.column("offset").to_pylist() == [r.offset for r in records]
        assert table.column("key").to_pylist() == [r.key for r in records]
        assert table.column("value").to_pylist() == [r.value for r in records]
        assert table.column("headers").to_pylist() == [
            [{"key": k, "value": v} for k, v in r.headers] for r in records
        ]
    assert [h for h, _ in split_batches(batch)] == [header]
    return records


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    if cut is not None:
        out = out[: cut % (len(out) + 1)]
    return bytes(out)


edits_st = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4)
cut_st = st.none() | st.integers(0, 10_000)


@FUZZ
@given(codec=st.sampled_from(list(Compression)), edits=edits_st, cut=cut_st)
def test_raw_mutations_are_caught_by_the_crc(codec, edits, cut) -> None:
    seed = SEEDS[codec]
    batch = mutate(seed, edits, cut)
    records = decode_all(batch)
    if records is not None:
        # Only the fields outside the CRC can differ: base offset and leader epoch.
        assert batch[8:12] == seed[8:12] and batch[16:] == seed[16:]
        shift = parse_header(batch).base_offset - 50
        expected = [r._replace(offset=r.offset + shift) for r in iter_records(seed)]
        assert records == expected


@FUZZ
@given(codec=st.sampled_from(list(Compression)), edits=edits_st, cut=cut_st)
def test_mutations_with_a_valid_crc(codec, edits, cut) -> None:
    seed = SEEDS[codec]
    batch = mutate(seed, edits, cut)
    if len(batch) >= 61 and batch[16] == 2:
        batch = restamp(batch)
    decode_all(batch)


def canonical(records: list, section: bytes) -> bool:
    """True when re-encoding the decoded records gives back exactly ``section``."""
    if not records:
        return section == b""
    rebuilt = build_batch(
        [r.value for r in records],
        [r.key for r in records],
        [r.timestamp for r in records],
        [list(r.headers) for r in records],
    )
    return decompress_records(rebuilt) == section


def kafka_python_records(batch: bytes) -> list | None:
    try:
        return [
            (r.offset, r.timestamp, r.key, r.value, r.headers) for r in DefaultRecordBatch(batch)
        ]
    except Exception:
        return None


@FUZZ
@given(
    codec=st.sampled_from([c for c in Compression if c != Compression.SNAPPY]),
    edits=edits_st,
    cut=cut_st,
    insert=st.binary(max_size=6),
    at=st.integers(0, 10_000),
    count_delta=st.integers(-1, 1),
)
def test_section_mutations_through_every_codec(codec, edits, cut, insert, at, count_delta) -> None:
    section = bytearray(mutate(SECTION, edits, cut))
    at %= len(section) + 1
    section[at:at] = insert
    section = bytes(section)
    count = 4 + count_delta
    payload = bytes(compress(codec, section))
    batch = make_batch(
        payload,
        attributes=int(codec),
        record_count=count,
        last_offset_delta=3,
        base_timestamp=1_000,
        max_timestamp=5_000,
    )
    records = decode_all(batch)
    if records is not None and canonical(records, section):
        theirs = kafka_python_records(batch)
        assert theirs is not None, "kafka-python rejects a canonical batch we accept"
        assert theirs == [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in records]


@FUZZ
@given(data=st.binary(max_size=200), prefix=st.booleans())
def test_random_bytes(data: bytes, prefix: bool) -> None:
    if prefix:  # give random bytes a plausible header so they reach deeper checks
        data = struct.pack(">qiib", 0, len(data) + 49, 0, 2) + data
    decode_all(data)
