"""Interoperability with the record code of kafka-python and aiokafka, for every codec.

Their builders' batches must decode with ours (iter_records and batches_to_arrow), ours must
decode with theirs, and for the same input our uncompressed bytes must equal theirs.

kafka-python reaches snappy through the ``python-snappy`` module, which is not a dependency of
ours; the ``kafka_snappy`` fixture gives kafka-python's own codec code (including its xerial
framing) the raw snappy functions of cramjam, which is what python-snappy wraps today.
"""

from __future__ import annotations

import types

import cramjam
import kafka.codec
import pytest
from aiokafka.record import default_records as aiokafka_default
from aiokafka.record.memory_records import MemoryRecords as AioMemoryRecords
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder
from streamhouse.broker.records import (
    Compression,
    Record,
    batches_to_arrow,
    build_batch,
    decompress_records,
    iter_records,
    parse_header,
    split_batches,
    validate_batch,
)

CODECS = list(Compression)

KEYS = [b"key-0", None, b"", b"key-3", None, b"key-5"]
VALUES = [b"value-0 " * 20, b"value-1 " * 20, None, b"", b"value-4 " * 30, b"v5" * 40]
TIMESTAMPS = [1_700_000_000_000, 1_700_000_000_500, 1_699_999_999_000, 1_700_000_100_000, 1, 42]
HEADERS = [
    [("trace-id", b"abc123"), ("null-header", None)],
    [],
    [("ünicode", b"\x00\x01")],
    [("empty", b"")],
    [],
    [("a", b"1"), ("b", b"2"), ("c", None)],
]
N = len(VALUES)


def expected(base_offset: int = 0) -> list[Record]:
    return [
        Record(base_offset + i, TIMESTAMPS[i], KEYS[i], VALUES[i], tuple(HEADERS[i]))
        for i in range(N)
    ]


@pytest.fixture
def kafka_snappy(monkeypatch: pytest.MonkeyPatch) -> None:
    shim = types.SimpleNamespace(
        compress=lambda data: bytes(cramjam.snappy.compress_raw(data)),
        decompress=lambda data: bytes(cramjam.snappy.decompress_raw(data)),
    )
    monkeypatch.setattr(kafka.codec, "snappy", shim)


def kafka_python_batch(codec: Compression) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=int(codec),
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i in range(N):
        assert builder.append(i, TIMESTAMPS[i], KEYS[i], VALUES[i], HEADERS[i]) is not None
    return bytes(builder.build())


def aiokafka_batch(codec: Compression, builder_class: type) -> bytes:
    builder = builder_class(2, int(codec), 0, -1, -1, -1, 1 << 20)
    for i in range(N):
        assert builder.append(i, TIMESTAMPS[i], KEYS[i], VALUES[i], HEADERS[i]) is not None
    return bytes(builder.build())


AIOKAFKA_BUILDERS = {
    "aiokafka-c": aiokafka_default.DefaultRecordBatchBuilder,
    "aiokafka-py": aiokafka_default._DefaultRecordBatchBuilderPy,
}


def assert_we_decode(batch: bytes, codec: Compression) -> None:
    header = validate_batch(batch)
    assert header.compression == codec, "the client fell back to no compression"
    assert header.record_count == N and header.last_offset_delta == N - 1
    assert header.max_timestamp == max(TIMESTAMPS)
    assert list(iter_records(batch)) == expected()
    table = batches_to_arrow([batch], partition=2)
    assert table.column("offset").to_pylist() == list(range(N))
    assert table.column("timestamp").cast("int64").to_pylist() == TIMESTAMPS
    assert table.column("key").to_pylist() == KEYS
    assert table.column("value").to_pylist() == VALUES
    assert table.column("headers").to_pylist() == [
        [{"key": k, "value": v} for k, v in h] for h in HEADERS
    ]


@pytest.mark.usefixtures("kafka_snappy")
@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_kafka_python_batches_decode_with_ours(codec: Compression) -> None:
    assert_we_decode(kafka_python_batch(codec), codec)


@pytest.mark.parametrize("builder", AIOKAFKA_BUILDERS, ids=str)
@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_aiokafka_batches_decode_with_ours(codec: Compression, builder: str) -> None:
    assert_we_decode(aiokafka_batch(codec, AIOKAFKA_BUILDERS[builder]), codec)


def our_batch(codec: Compression, **options: object) -> bytes:
    return build_batch(VALUES, KEYS, TIMESTAMPS, HEADERS, compression=codec, **options)


def as_tuples(records) -> list[tuple]:
    return [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in records]


EXPECTED_TUPLES = [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in expected()]


@pytest.mark.usefixtures("kafka_snappy")
@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_our_batches_decode_with_kafka_python(codec: Compression) -> None:
    batch = DefaultRecordBatch(our_batch(codec))
    assert batch.validate_crc()
    assert batch.compression_type == codec
    assert as_tuples(batch) == EXPECTED_TUPLES


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_our_batches_decode_with_aiokafka(codec: Compression) -> None:
    for reader in (aiokafka_default.DefaultRecordBatch, aiokafka_default._DefaultRecordBatchPy):
        batch = reader(our_batch(codec))
        assert batch.validate_crc()
        assert batch.compression_type == codec
        assert as_tuples(batch) == EXPECTED_TUPLES


def test_uncompressed_bytes_equal_the_clients() -> None:
    # kafka-python writes partition leader epoch 0; aiokafka writes -1, as the Java client does.
    assert our_batch(Compression.NONE, partition_leader_epoch=0) == kafka_python_batch(
        Compression.NONE
    )
    for builder in AIOKAFKA_BUILDERS.values():
        assert our_batch(Compression.NONE) == aiokafka_batch(Compression.NONE, builder)


@pytest.mark.usefixtures("kafka_snappy")
@pytest.mark.parametrize("codec", CODECS[1:], ids=lambda c: c.name)
def test_compressed_sections_equal_the_clients(codec: Compression) -> None:
    section = decompress_records(our_batch(codec))
    assert section == decompress_records(kafka_python_batch(codec))
    for builder in AIOKAFKA_BUILDERS.values():
        assert section == decompress_records(aiokafka_batch(codec, builder))


@pytest.mark.usefixtures("kafka_snappy")
def test_clients_write_xerial_snappy_and_we_write_raw() -> None:
    xerial = b"\x82SNAPPY\x00"
    assert kafka_python_batch(Compression.SNAPPY)[61:].startswith(xerial)
    for builder in AIOKAFKA_BUILDERS.values():
        assert aiokafka_batch(Compression.SNAPPY, builder)[61:].startswith(xerial)
    ours = our_batch(Compression.SNAPPY)[61:]
    assert not ours.startswith(xerial)
    assert bytes(cramjam.snappy.decompress_raw(ours)) == decompress_records(our_batch(0))


@pytest.mark.usefixtures("kafka_snappy")
def test_record_sets_both_ways() -> None:
    # A Produce request's record set from kafka-python: one batch per codec. Its builder keeps
    # base offset 0 and puts the running offset into the record deltas (6..11, 12..17, ...).
    theirs = b""
    for i, codec in enumerate(CODECS):
        builder = MemoryRecordsBuilder(2, int(codec), 1 << 20, offset=i * N)
        for j in range(N):
            builder.append(TIMESTAMPS[j], KEYS[j], VALUES[j], HEADERS[j])
        builder.close()
        theirs += bytes(builder.buffer())
    parts = split_batches(theirs)
    assert [h.compression for h, _ in parts] == CODECS
    assert [h.base_offset for h, _ in parts] == [0] * len(CODECS)
    assert [h.last_offset for h, _ in parts] == [(i + 1) * N - 1 for i in range(len(CODECS))]
    table = batches_to_arrow([view for _, view in parts], 0)
    assert table.column("offset").to_pylist() == list(range(N * len(CODECS)))

    # Our record set (as a Fetch response carries it) read by both clients' MemoryRecords.
    ours = b"".join(our_batch(codec, base_offset=i * N) for i, codec in enumerate(CODECS))
    for records_class in (MemoryRecords, AioMemoryRecords):
        memory = records_class(ours)
        offsets = []
        while (batch := memory.next_batch()) is not None:
            assert batch.validate_crc()
            offsets += [r.offset for r in batch]
        assert offsets == list(range(N * len(CODECS)))


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_idempotent_producer_fields_round_trip(codec: Compression) -> None:
    builder = aiokafka_default.DefaultRecordBatchBuilder(2, int(codec), 1, 77, 3, 1000, 1 << 20)
    for i in range(N):
        builder.append(i, TIMESTAMPS[i], KEYS[i], VALUES[i], HEADERS[i])
    header = validate_batch(bytes(builder.build()))
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (77, 3, 1000)
    assert header.is_transactional
    ours = our_batch(
        codec, producer_id=77, producer_epoch=3, base_sequence=1000, is_transactional=True
    )
    batch = aiokafka_default.DefaultRecordBatch(ours)
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (77, 3, 1000)
    assert batch.is_transactional
    assert parse_header(ours).is_transactional
