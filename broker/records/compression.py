"""The five Kafka codecs: encode what we build, decode what any client sends.

Decoding is bounded: a hostile batch can declare (or expand to) gigabytes from a few compressed
bytes, so every decoder stops at ``limit`` output bytes and reports a clear error instead of
allocating. Corrupt payloads raise :class:`CorruptBatchError`, never a codec library's own
exception and never partial data.

Snappy comes in two framings. librdkafka writes raw snappy; the Java client, kafka-python and
aiokafka write the xerial framing (``\\x82SNAPPY\\x00``, int32 version, int32 compat, then
blocks of ``[int32 length][raw snappy]``). We decode both and encode raw, which every client
decodes.
"""

from __future__ import annotations

import struct
import zlib

import cramjam
import lz4.frame

from .errors import CorruptBatchError, UnsupportedCompressionError
from .header import COMPRESSION_MASK, Compression

# The default ceiling on the size of one decompressed records section.
MAX_UNCOMPRESSED_BYTES = 256 * 1024 * 1024

XERIAL_MAGIC = b"\x82SNAPPY\x00"
XERIAL_HEADER_SIZE = 16  # magic (8) + version (int32) + compat (int32)
_INT32 = struct.Struct(">i")
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

Buffer = bytes | bytearray | memoryview


def codec_of(attributes: int) -> Compression:
    """The codec named by attribute bits 0-2, or UnsupportedCompressionError for 5-7."""
    codec_id = attributes & COMPRESSION_MASK
    if codec_id > Compression.ZSTD:
        raise UnsupportedCompressionError(
            f"compression codec id {codec_id} in attributes {attributes:#06x} is unknown "
            "(0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)"
        )
    return Compression(codec_id)


def compress(codec: Compression, data: Buffer) -> Buffer:
    """Compresses a records section the way Kafka clients expect to read it."""
    if codec == Compression.NONE:
        return data
    if codec == Compression.GZIP:
        # wbits 31 = gzip container (what Kafka's GZIPInputStream reads), level 6 = Kafka default.
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        return packer.compress(data) + packer.flush()
    if codec == Compression.SNAPPY:
        return cramjam.snappy.compress_raw(data)
    if codec == Compression.LZ4:
        # Kafka's Java reader wants independent 64 KiB blocks and no content size.
        return lz4.frame.compress(
            data,
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
            store_size=False,
        )
    if codec == Compression.ZSTD:
        return cramjam.zstd.compress(data, level=3)
    raise UnsupportedCompressionError(f"cannot compress with codec {codec!r}")


def decompress(codec: Compression, payload: Buffer, limit: int = MAX_UNCOMPRESSED_BYTES) -> Buffer:
    """Decompresses a records section; at most ``limit`` bytes of output.

    Raises:
        CorruptBatchError: the payload is not valid for the codec, has trailing bytes, or
            expands beyond ``limit``.
    """
    if codec == Compression.NONE:
        return payload
    name = codec.name.lower()
    try:
        if codec == Compression.GZIP:
            return _gunzip(payload, limit)
        if codec == Compression.SNAPPY:
            return _unsnappy(payload, limit)
        if codec == Compression.LZ4:
            return _unlz4(payload, limit)
        if codec == Compression.ZSTD:
            return _unzstd(payload, limit)
    except CorruptBatchError:
        raise
    except (zlib.error, cramjam.DecompressionError, RuntimeError, ValueError) as exc:
        raise CorruptBatchError(
            f"{name} payload of {len(payload)} bytes is corrupt: {exc}"
        ) from exc
    raise UnsupportedCompressionError(f"cannot decompress codec {codec!r}")


def _too_big(name: str, limit: int) -> CorruptBatchError:
    return CorruptBatchError(f"{name} payload expands beyond the {limit}-byte limit")


def _gunzip(payload: Buffer, limit: int) -> bytes:
    out: list[bytes] = []
    total = 0
    data = bytes(payload)
    while True:
        unpacker = zlib.decompressobj(31)
        chunk = unpacker.decompress(data, limit - total + 1)
        total += len(chunk)
        if total > limit:
            raise _too_big("gzip", limit)
        out.append(chunk)
        if not unpacker.eof:
            raise CorruptBatchError(f"gzip payload of {len(payload)} bytes ends mid-stream")
        data = unpacker.unused_data
        if not data:  # several gzip members are allowed, as GZIPInputStream reads them
            return b"".join(out)


def _unsnappy(payload: Buffer, limit: int) -> Buffer:
    view = memoryview(payload)
    if len(view) < XERIAL_HEADER_SIZE or view[:8] != XERIAL_MAGIC:
        return _raw_snappy(view, limit)
    # Version and compat are ignored, like kafka-python does: some producers write them
    # little-endian, and the block layout is the same either way.
    blocks: list[Buffer] = []
    total = 0
    pos = XERIAL_HEADER_SIZE
    while pos < len(view):
        if pos + 4 > len(view):
            raise CorruptBatchError(f"xerial snappy block header at byte {pos} is truncated")
        (size,) = _INT32.unpack_from(view, pos)
        pos += 4
        if size < 0 or pos + size > len(view):
            raise CorruptBatchError(
                f"xerial snappy block at byte {pos - 4} declares {size} bytes, "
                f"{len(view) - pos} available"
            )
        block = _raw_snappy(view[pos : pos + size], limit - total)
        total += len(block)
        blocks.append(block)
        pos += size
    return b"".join(blocks)


def _raw_snappy(view: memoryview, limit: int) -> Buffer:
    declared = cramjam.snappy.decompress_raw_len(view)
    if declared > limit:
        raise _too_big("snappy", limit)
    return cramjam.snappy.decompress_raw(view)


def _unlz4(payload: Buffer, limit: int) -> bytes:
    # LZ4FrameDecompressor allocates max_length up front, so ask for modest pieces.
    unpacker = lz4.frame.LZ4FrameDecompressor()
    piece = max(1 << 16, 4 * len(payload))
    parts: list[bytes] = []
    total = 0
    data: Buffer = payload
    while True:
        part = unpacker.decompress(data, max_length=min(piece, limit + 1 - total))
        data = b""
        total += len(part)
        if total > limit:
            raise _too_big("lz4", limit)
        parts.append(part)
        if unpacker.eof:
            break
        if unpacker.needs_input:
            raise CorruptBatchError(f"lz4 payload of {len(payload)} bytes ends mid-frame")
    if unpacker.unused_data:
        extra = len(unpacker.unused_data)
        raise CorruptBatchError(f"lz4 payload has {extra} bytes after the frame")
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _unzstd(payload: Buffer, limit: int) -> Buffer:
    view = memoryview(payload)
    declared = _zstd_content_size(view)
    if declared is not None and declared > limit:
        raise _too_big("zstd", limit)
    # cramjam cannot cap a one-shot decode, so decode into buffers we size ourselves: exact
    # when the frame states its size, otherwise growing geometrically up to the limit.
    size = declared if declared is not None else min(limit, max(1 << 16, 8 * len(view)))
    while True:
        out = bytearray(size + 1)  # one spare byte shows that the frame is not bigger than stated
        try:
            written = cramjam.zstd.decompress_into(view, out)
        except cramjam.DecompressionError as exc:
            if "whole buffer" not in str(exc):
                raise
            if size >= limit:
                raise _too_big("zstd", limit) from exc
            size = min(limit, size * 4)
            continue
        return memoryview(out)[:written]


def _zstd_content_size(view: memoryview) -> int | None:
    """Frame_Content_Size from a zstd frame header, when present (RFC 8878, 3.1.1.1)."""
    if len(view) < 6 or view[:4] != _ZSTD_MAGIC:
        return None
    descriptor = view[4]
    fcs_flag = descriptor >> 6
    single_segment = (descriptor >> 5) & 1
    dict_id_size = (0, 1, 2, 4)[descriptor & 3]
    fcs_size = (single_segment, 2, 4, 8)[fcs_flag]
    if fcs_size == 0:
        return None
    pos = 5 + (0 if single_segment else 1) + dict_id_size
    if pos + fcs_size > len(view):
        return None
    value = int.from_bytes(view[pos : pos + fcs_size], "little")
    return value + 256 if fcs_size == 2 else value
