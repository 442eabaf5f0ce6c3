"""Hostile and broken batches: each gets a specific RecordBatchError, nothing partial comes back.

Most cases re-stamp the CRC after breaking something (``restamp``/``make_batch``), because a
batch with a wrong CRC never reaches the later checks; those later checks are what protects us
from a client that computes the CRC over garbage.
"""

from __future__ import annotations

import struct
import tracemalloc
import zlib

import cramjam
import lz4.frame
import pytest
from streamhouse.broker.records import (
    BatchLengthError,
    BatchTooLargeError,
    Compression,
    CorruptBatchError,
    InvalidRecordError,
    RecordBatchError,
    RecordCountError,
    TruncatedBatchError,
    UnsupportedCompressionError,
    UnsupportedMagicError,
    batches_to_arrow,
    build_batch,
    decompress_records,
    iter_records,
    split_batches,
    validate_batch,
)

from tests.broker.records.conftest import encode_record, make_batch, nullable, restamp, varint

CODECS = list(Compression)
READERS = {
    "validate_batch": validate_batch,
    "iter_records": lambda b: list(iter_records(b)),
    "batches_to_arrow": lambda b: batches_to_arrow([b], 0),
    "split_batches": split_batches,
}


def small_batch(codec: Compression = Compression.NONE) -> bytes:
    return build_batch(
        [b"v1", None, b"v3"],
        keys=[b"k", None, b""],
        timestamps=[10, 11, 9],
        headers=[[("h", b"1")], [], [("n", None)]],
        compression=codec,
    )


def raises_everywhere(batch: bytes, error: type[Exception], match: str | None = None) -> None:
    """Every public reader rejects ``batch`` with ``error``."""
    for name, read in READERS.items():
        with pytest.raises(error, match=match):
            read(batch)
            pytest.fail(f"{name} accepted the batch")


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_any_flipped_bit_after_the_crc_is_caught(codec: Compression) -> None:
    batch = small_batch(codec)
    for pos in range(21, len(batch)):
        broken = bytearray(batch)
        broken[pos] ^= 0x10
        with pytest.raises(CorruptBatchError, match="CRC32C mismatch"):
            validate_batch(bytes(broken))
    raises_everywhere(restamp(batch, fix_crc=False, crc=12345), CorruptBatchError, "CRC32C")


@pytest.mark.parametrize("magic", [0, 1, 3, -1])
def test_wrong_magic(magic: int) -> None:
    raises_everywhere(restamp(small_batch(), magic=magic), UnsupportedMagicError, f"magic {magic}")


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_every_prefix_is_truncated(codec: Compression) -> None:
    batch = small_batch(codec)
    for size in range(len(batch)):
        for read in READERS.values():
            with pytest.raises(TruncatedBatchError):
                read(batch[:size]) if size else validate_batch(b"")


def test_declared_length_disagrees_with_the_bytes() -> None:
    batch = small_batch()
    length = len(batch) - 12
    # Longer than the bytes: the bytes end early, a special case of a length disagreement.
    with pytest.raises(TruncatedBatchError, match="needs"):
        validate_batch(restamp(batch, batch_length=length + 1))
    assert issubclass(TruncatedBatchError, BatchLengthError)
    # Shorter than the bytes, or trailing bytes after the batch.
    with pytest.raises(BatchLengthError, match="1 extra") as info:
        validate_batch(restamp(batch, batch_length=length - 1))
    assert not isinstance(info.value, TruncatedBatchError)
    with pytest.raises(BatchLengthError, match="3 extra"):
        validate_batch(batch + b"xyz")
    for bad in (48, 0, -1, -(2**31)):
        with pytest.raises(BatchLengthError, match="smaller than"):
            validate_batch(restamp(batch, batch_length=bad))
        with pytest.raises(BatchLengthError, match="smaller than"):
            split_batches(restamp(batch, batch_length=bad))


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_record_count_off_by_one(codec: Compression) -> None:
    batch = small_batch(codec)
    raises_everywhere(
        restamp(batch, record_count=4), RecordCountError, "declares 4 records .* ends after 3"
    )
    raises_everywhere(restamp(batch, record_count=2), RecordCountError, "remain after the 2")
    raises_everywhere(restamp(batch, record_count=-1), RecordCountError, "negative record count")


def test_last_offset_delta_must_match_the_records() -> None:
    batch = small_batch()
    for delta in (1, 3, 100):
        raises_everywhere(
            restamp(batch, last_offset_delta=delta),
            RecordCountError,
            f"lastOffsetDelta is {delta} but the last record has offset delta 2",
        )
    raises_everywhere(restamp(batch, last_offset_delta=-1), RecordCountError, "negative last")


def test_compacted_offset_gaps_are_valid_but_order_is_enforced() -> None:
    gaps = encode_record(0, b"a", b"1") + encode_record(5, b"b", b"2")
    batch = make_batch(gaps, record_count=2, last_offset_delta=5, base_offset=100)
    assert [r.offset for r in iter_records(batch)] == [100, 105]
    assert batches_to_arrow([batch], 0).column("offset").to_pylist() == [100, 105]
    for first, second in ((0, 0), (3, 1), (-1, 0)):
        section = encode_record(first, b"a", b"1") + encode_record(second, b"b", b"2")
        raises_everywhere(
            make_batch(section, record_count=2, last_offset_delta=second),
            InvalidRecordError,
            "negative or not increasing",
        )


def record_body(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return varint(len(body)) + body


BASE = b"\x00" + varint(0) + varint(0)  # attributes, timestamp delta, offset delta


@pytest.mark.parametrize(
    ("section", "error", "match"),
    [
        # A varint that never ends (too many continuation bytes).
        (b"\xff" * 6 + b"\x01", InvalidRecordError, "malformed varint"),
        (record_body(BASE + b"\xff\xff\xff\xff\xff\x01", nullable(b"v")), InvalidRecordError,
         "malformed varint"),
        # A varint cut off by the end of the section.
        (b"\x80", RecordCountError, "runs past the end of the section"),
        # Record length larger than the section, or negative.
        (varint(50) + BASE, RecordCountError, "runs past the end of the section"),
        (varint(2**31 - 1) + BASE, RecordCountError, "runs past the end of the section"),
        (varint(-5) + BASE, InvalidRecordError, "invalid length -5"),
        # Key length past the record's end; a huge key length; a length below -1.
        (record_body(BASE, varint(10), b"abc", nullable(b"v"), varint(0)), InvalidRecordError,
         "runs past the end of the record"),
        (record_body(BASE, varint(2**31 - 1), b"abc"), InvalidRecordError,
         "runs past the end of the record"),
        (record_body(BASE, varint(-2), nullable(b"v"), varint(0)), InvalidRecordError,
         "invalid length -2"),
        # A record whose fields use fewer bytes than it declares.
        (record_body(BASE, nullable(b"k"), nullable(b"v"), varint(0), b"junk"),
         InvalidRecordError, "its fields use a different amount"),
        # A record too short to hold its attributes byte.
        (varint(0), InvalidRecordError, "runs past the end of the record"),
        # Header count negative or larger than the bytes present.
        (record_body(BASE, nullable(None), nullable(b"v"), varint(-1)), InvalidRecordError,
         "invalid length -1"),
        (record_body(BASE, nullable(None), nullable(b"v"), varint(2**31 - 1)),
         InvalidRecordError, "runs past the end of the record"),
        # A null header key, a header key that is not UTF-8, a header value length below -1.
        (record_body(BASE, nullable(None), nullable(b"v"), varint(1), varint(-1), varint(-1)),
         InvalidRecordError, "header key is null"),
        (record_body(BASE, nullable(None), nullable(b"v"), varint(1), nullable(b"\xc3\x28"),
                     varint(-1)), InvalidRecordError, "not valid UTF-8"),
        (record_body(BASE, nullable(None), nullable(b"v"), varint(1), nullable(b"\xed\xa0\x80"),
                     varint(-1)), InvalidRecordError, "not valid UTF-8"),
        (record_body(BASE, nullable(None), nullable(b"v"), varint(1), nullable(b"k"),
                     varint(-7)), InvalidRecordError, "invalid length -7"),
        # An offset delta outside int32.
        (record_body(b"\x00" + varint(0) + varint(2**31), nullable(b"v")), InvalidRecordError,
         "malformed varint"),
    ],
)  # fmt: skip
def test_malformed_records(section: bytes, error: type[Exception], match: str) -> None:
    raises_everywhere(make_batch(section), error, f"record 0 at byte 0.*{match}")


def test_errors_name_the_record_and_the_batch() -> None:
    good = encode_record(0, b"a", b"1")
    bad = record_body(b"\x00" + varint(0) + varint(1), varint(-3))
    batch = make_batch(good + bad, record_count=2, last_offset_delta=1, base_offset=77)
    where = f"base offset 77, record 1 at byte {len(good)} .*field at byte {len(good) + 4}"
    with pytest.raises(InvalidRecordError, match=where):
        validate_batch(batch)
    with pytest.raises(InvalidRecordError, match=r"batch 1 \(base offset 77\), record 1"):
        batches_to_arrow([small_batch(), batch], 0)


def test_valid_utf8_header_keys_are_accepted() -> None:
    keys = ["", "a", "é", "€", "𝄞", "\U0010ffff", "mixed ключ 字"]
    batch = build_batch([b"v"], headers=[[(k, b"x") for k in keys]])
    assert [k for k, _ in next(iter_records(batch)).headers] == keys
    header_keys = batches_to_arrow([batch], 0).column("headers").to_pylist()[0]
    assert [h["key"] for h in header_keys] == keys


def test_oversize_batch_is_rejected_before_anything_is_read() -> None:
    batch = small_batch()
    with pytest.raises(BatchTooLargeError, match="exceeds the 64-byte limit"):
        validate_batch(batch, max_batch_bytes=64)
    # A declared length of 2 GiB on a tiny buffer is refused by the limit, not read.
    huge = restamp(batch, batch_length=2**31 - 1)
    with pytest.raises(BatchTooLargeError):
        validate_batch(huge, max_batch_bytes=1 << 20)
    with pytest.raises(BatchTooLargeError):
        split_batches(huge, max_batch_bytes=1 << 20)
    with pytest.raises(TruncatedBatchError):
        split_batches(huge)


@pytest.mark.parametrize("codec_id", [5, 6, 7])
def test_unknown_compression_ids(codec_id: int) -> None:
    batch = make_batch(encode_record(0, None, b"v"), attributes=codec_id)
    raises_everywhere(batch, UnsupportedCompressionError, f"codec id {codec_id}")


def compressed_batch(codec: Compression, payload: bytes, count: int = 1) -> bytes:
    return make_batch(payload, attributes=int(codec), record_count=count, last_offset_delta=0)


GARBAGE = bytes(range(7, 250, 3)) * 3


@pytest.mark.parametrize("codec", CODECS[1:], ids=lambda c: c.name)
def test_corrupt_compressed_payloads_with_valid_crc(codec: Compression) -> None:
    section = encode_record(0, b"key", b"value" * 40)
    good = small_batch(codec)
    payload = good[61:]
    cases = {
        "garbage": GARBAGE,
        "truncated": payload[: len(payload) // 2],
        "empty": b"",
    }
    if codec in (Compression.GZIP, Compression.LZ4):  # self-delimiting streams
        cases["trailing junk"] = payload + b"\x00junk"
    for name, broken in cases.items():
        batch = compressed_batch(codec, broken, count=3)
        if codec == Compression.SNAPPY and name == "empty":
            continue  # an empty raw-snappy stream is invalid input checked below
        with pytest.raises(CorruptBatchError, match=codec.name.lower()):
            validate_batch(batch)
            pytest.fail(f"{name} payload accepted")
    assert section  # the section is what a valid payload would hold


def test_empty_snappy_payload_is_rejected() -> None:
    with pytest.raises(RecordBatchError):
        validate_batch(compressed_batch(Compression.SNAPPY, b""))


def limited(batch: bytes, limit: int) -> None:
    validate_batch(batch, max_uncompressed_bytes=limit)


@pytest.mark.parametrize("codec", CODECS[1:], ids=lambda c: c.name)
def test_decompression_is_bounded(codec: Compression) -> None:
    batch = build_batch([b"\x00" * 100_000], compression=codec)
    assert len(batch) < 6_000
    assert validate_batch(batch).record_count == 1
    with pytest.raises(CorruptBatchError, match="expands beyond the 50000-byte limit"):
        limited(batch, 50_000)
    with pytest.raises(CorruptBatchError, match="expands beyond"):
        decompress_records(batch, max_uncompressed_bytes=50_000)


def peak_bytes(action) -> int:
    tracemalloc.start()
    try:
        action()
    except RecordBatchError:
        pass
    else:
        pytest.fail("hostile batch accepted")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_declared_sizes_never_drive_allocation() -> None:
    # zstd frame header claiming 1 TiB of content (Frame_Content_Size, 8 bytes).
    zstd_bomb = b"\x28\xb5\x2f\xfd" + bytes([0xC0]) + struct.pack("<Q", 1 << 40) + b"\x00" * 8
    # raw snappy preamble claiming 4 GiB - 1.
    snappy_bomb = b"\xff\xff\xff\xff\x0f" + b"\x00" * 8
    # xerial framing with a block declaring 2 GiB.
    xerial_bomb = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + struct.pack(">i", 2**31 - 1)
    hostile = [
        compressed_batch(Compression.ZSTD, zstd_bomb),
        compressed_batch(Compression.SNAPPY, snappy_bomb),
        compressed_batch(Compression.SNAPPY, xerial_bomb + b"abc"),
        make_batch(encode_record(0, None, b"v"), record_count=2**31 - 1),
        make_batch(record_body(BASE, varint(2**31 - 1))),
        make_batch(varint(2**31 - 1)),
    ]
    for batch in hostile:
        for read in READERS.values():
            assert peak_bytes(lambda b=batch, r=read: r(b)) < 1 << 20


def test_zstd_without_content_size_decodes_and_is_bounded() -> None:
    import zstandard

    section = encode_record(0, b"k", b"v" * 300_000)
    packer = zstandard.ZstdCompressor(write_content_size=False)
    batch = compressed_batch(Compression.ZSTD, packer.compress(section))
    assert next(iter_records(batch)).value == b"v" * 300_000
    with pytest.raises(CorruptBatchError, match="expands beyond"):
        limited(batch, 100_000)


def test_multi_member_gzip_and_xerial_blocks_decode() -> None:
    section = encode_record(0, b"k", b"a" * 1000) + encode_record(1, None, b"b" * 1000)
    half = len(section) // 2
    members = zlib.compress(section[:half], wbits=31) + zlib.compress(section[half:], wbits=31)
    gz = compressed_batch(Compression.GZIP, members, count=2)
    gz = restamp(gz, last_offset_delta=1)
    xerial = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    for part in (section[:half], section[half:]):
        block = bytes(cramjam.snappy.compress_raw(part))
        xerial += struct.pack(">i", len(block)) + block
    sn = restamp(compressed_batch(Compression.SNAPPY, xerial, count=2), last_offset_delta=1)
    for batch in (gz, sn):
        assert [r.value for r in iter_records(batch)] == [b"a" * 1000, b"b" * 1000]
        assert decompress_records(batch) == section


def test_lz4_frame_with_content_size_and_checksum_decodes() -> None:
    section = encode_record(0, None, b"z" * 5000)
    payload = lz4.frame.compress(section, store_size=True, content_checksum=True)
    batch = compressed_batch(Compression.LZ4, payload)
    assert next(iter_records(batch)).value == b"z" * 5000
    broken = bytearray(payload)
    broken[-2] ^= 0xFF  # the content checksum
    with pytest.raises(CorruptBatchError, match="lz4"):
        validate_batch(compressed_batch(Compression.LZ4, bytes(broken)))


def test_a_bad_batch_among_good_ones_returns_nothing() -> None:
    good = small_batch()
    bad = restamp(small_batch(Compression.GZIP), record_count=9)
    with pytest.raises(RecordCountError, match="batch 2"):
        batches_to_arrow([good, good, bad, good], 0)
    with pytest.raises(RecordCountError, match="batch 1 at byte"):
        split_batches(good + bad + good)
    corrupt = restamp(good, fix_crc=False, crc=1)
    with pytest.raises(CorruptBatchError, match=r"^batch 3: CRC32C mismatch"):
        batches_to_arrow([good, good, good, corrupt], 0)


def test_batches_skipped_by_arrow_are_still_checked() -> None:
    # A control batch whose records are garbage, and a "no records" batch that has some.
    control = make_batch(b"\x05garbage", attributes=0x30, record_count=1)
    empty_with_bytes = make_batch(encode_record(0, None, b"v"), record_count=0)
    for batch in (control, empty_with_bytes):
        raises_everywhere(batch, RecordBatchError)
        with pytest.raises(RecordBatchError, match="batch 1"):
            batches_to_arrow([small_batch(), batch], 0)
