"""Companions read by range (footer, then the wanted row groups' column chunks) give the same
rows as the whole file, fetch less, and reject what is not a companion."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamhouse.broker.log import companion
from streamhouse.broker.log.companion import (
    IncompleteTail,
    companion_key,
    encode_companion,
    parse_footer,
    read_companion,
)
from streamhouse.broker.log.keyfilter import KeyFilter, hash_keys
from streamhouse.broker.records import build_batch, set_base_offset
from streamhouse.engine.scan.companions import footers_of, read_companion_rows

from ..conftest import T0

ROWS_PER_GROUP = 8
BATCHES = 5
PER_BATCH = 10


@pytest.fixture
def companion_bytes(monkeypatch) -> bytes:
    """50 rows in row groups of 8 (7 groups); keys k<offset % 13>, one null key per batch."""
    monkeypatch.setattr(companion, "ROW_GROUP_ROWS", ROWS_PER_GROUP)
    batches = []
    for b in range(BATCHES):
        n = PER_BATCH
        keys = [None if i == 0 else f"k{(b * n + i) % 13}".encode() for i in range(n)]
        values = [f'{{"b": {b}, "i": {i}}}'.encode() for i in range(n)]
        stamps = [T0 + 100 * b + (n - i) for i in range(n)]  # decreasing inside each batch
        batch = build_batch(values, keys=keys, timestamps=stamps, headers=[[("h", b"x")]] * n)
        batches.append(_at(batch, b * n))
    return encode_companion(batches, partition=3)


def _at(batch: bytes, base_offset: int) -> bytes:
    return set_base_offset(batch, base_offset)


@pytest.mark.parametrize(
    ("start", "end", "tmin", "tmax"),
    [(0, 50, None, None), (9, 23, None, None), (0, 50, T0 + 205, T0 + 305), (40, 41, None, None)],
)
async def test_ranged_read_equals_the_whole_read(manager, companion_bytes, start, end, tmin, tmax):
    footer = parse_footer(companion_bytes)
    assert footer.metadata.num_row_groups == 7
    groups = footer.wanted(start, end, tmin, tmax)
    assert 0 < len(groups) <= 7
    key = "segments/9/3/00000000000000000000-0000000001.seg"
    await manager.store.put(companion_key(key), companion_bytes)
    got, fetched = await read_companion_rows(
        manager.cache, key, footer, len(companion_bytes), groups, None
    )
    whole = read_companion(companion_bytes, start, end, tmin, tmax)
    assert got.equals(whole)
    if len(groups) < 7:
        assert fetched < len(companion_bytes) // 2


async def test_projection_reads_only_the_named_columns(manager, companion_bytes):
    footer = parse_footer(companion_bytes)
    key = "segments/9/3/00000000000000000000-0000000001.seg"
    await manager.store.put(companion_key(key), companion_bytes)
    groups = list(range(7))
    full, full_bytes = await read_companion_rows(
        manager.cache, key, footer, len(companion_bytes), groups, None
    )
    cols = ["partition", "offset", "timestamp"]
    narrow, narrow_bytes = await read_companion_rows(
        manager.cache, key, footer, len(companion_bytes), groups, cols
    )
    assert narrow.schema == full.schema
    for name in cols:
        assert narrow.column(name).equals(full.column(name))
    assert narrow.column("value").null_count == narrow.num_rows
    assert narrow.column("headers").to_pylist() == [[]] * narrow.num_rows
    assert narrow_bytes < full_bytes


def test_true_timestamps_and_key_filters_per_row_group(companion_bytes):
    footer = parse_footer(companion_bytes)
    first = footer.row_groups[0]
    # Row group 0 holds offsets 0-7 of batch 0, stamped T0+10 down to T0+3.
    assert (first.offset_min, first.offset_max) == (0, 7)
    assert (first.time_min, first.time_max) == (T0 + 3, T0 + 10)
    k5 = hash_keys(pa.array([b"k5"]))
    assert footer.row_groups[0].keys.may_contain_any(k5)  # offset 5
    holding = footer.wanted(0, 50, key_hashes=k5)
    assert 0 in holding and len(holding) < 7
    assert footer.wanted(0, 50, key_hashes=hash_keys(pa.array([], pa.binary()))) == []


@pytest.mark.parametrize(
    "data",
    [b"", b"PAR1", b"garbage" * 10, b"x" * 20 + (10**6).to_bytes(4, "little") + b"PAR1"],
)
def test_what_is_not_a_companion_footer_is_refused(data):
    with pytest.raises(ValueError):
        parse_footer(data)


def test_inconsistent_key_filter_is_refused():
    built = KeyFilter.build(pa.array([b"a", b"b"]))
    header, bits = built.header(), built.bits.tobytes()
    assert KeyFilter.from_parts(header, bits).may_contain_any(hash_keys(pa.array([b"a"])))
    with pytest.raises(ValueError):
        KeyFilter.from_parts({**header, "nbits": header["nbits"] * 2}, bits)
    with pytest.raises(ValueError):
        KeyFilter.from_parts(header, bits[:-1])
    with pytest.raises(ValueError):
        KeyFilter.from_parts({**header, "probes": 0}, bits)
    with pytest.raises(KeyError):
        KeyFilter.from_parts({"nbits": header["nbits"]}, bits)


def test_companion_with_filters_stays_a_plain_parquet_file(companion_bytes):
    """The filters sit between the data and the footer: any Parquet reader reads the file."""
    import duckdb

    table = pq.read_table(pa.BufferReader(companion_bytes))
    assert table.num_rows == BATCHES * PER_BATCH
    con = duckdb.connect()
    con.register("data", table)
    path_free = con.execute('SELECT count(*), min("offset"), max("offset") FROM data')
    assert path_free.fetchall() == [(50, 0, 49)]


def test_a_tail_too_short_for_the_filters_asks_for_more(companion_bytes):
    footer = parse_footer(companion_bytes)
    length = int.from_bytes(companion_bytes[-8:-4], "little")
    with pytest.raises(IncompleteTail) as short:
        parse_footer(companion_bytes[-(length + 8) :])
    again = parse_footer(companion_bytes[-short.value.needed :])
    assert [g.keys.nbits for g in again.row_groups] == [g.keys.nbits for g in footer.row_groups]


async def test_footer_is_fetched_once_then_served_from_memory(manager, companion_bytes):
    key = "segments/9/3/00000000000000000000-0000000001.seg"
    await manager.store.put(companion_key(key), companion_bytes)
    footers = footers_of(manager.cache)
    footers.clear()
    before = footers.fetches
    one = await footers.get(key)
    two = await footers.get(key)
    assert one is two and footers.fetches == before + 1
    assert await footers.get("segments/9/3/none.seg") is None
    assert await footers.get("segments/9/3/none.seg") is None
    assert footers.fetches == before + 2  # the absence is remembered


def test_key_hash_is_stable_across_versions():
    """Filters stored in companions stay valid only while the hash never changes."""
    hashes = hash_keys(pa.array([b"a", b"", None, b"order-000000001"], pa.binary()))
    assert [int(h) for h in hashes] == [
        198367012849983736,
        17665956581633026203,
        1170120226086289594,
    ]
    as_text = hash_keys(pa.array(["a", "order-000000001"], pa.string()))
    assert [int(h) for h in as_text] == [198367012849983736, 1170120226086289594]


def test_key_filter_has_no_false_negatives_and_few_false_positives():
    present = pa.array([f"order-{i}".encode() for i in range(10_000)])
    keys = KeyFilter.build(present)
    hashes = hash_keys(present)
    assert all(keys.may_contain_any(hashes[i : i + 1]) for i in range(len(hashes)))
    absent = hash_keys(pa.array([f"other-{i}".encode() for i in range(10_000)]))
    false_positives = sum(keys.may_contain_any(absent[i : i + 1]) for i in range(len(absent)))
    assert false_positives < 30  # ~0.05% expected at 16 bits per key
