"""Encoders and decoders for Kafka messages, compiled from the generated spec tables.

Each (message, version) pair is compiled once into a tree of small closures, so decoding a
request is a walk over its fields with ``struct.unpack_from`` and no per-call interpretation
of the spec. Messages are plain dicts keyed by snake_case field names; a field the version
does not carry decodes to its spec default, and the encoder fills missing keys with defaults,
so handlers read and write every field regardless of version.

Decoding never trusts a declared size: every length and count is checked against the bytes
actually present before anything is sliced or allocated, and malformed input raises
``DecodeError`` (the listener answers it by closing the connection, as Kafka does).
``records`` fields stay bytes; the encoder also accepts a list of byte strings for them so a
fetch response is assembled from stored batches without concatenating them first.
"""

from __future__ import annotations

import functools
import struct
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from streamhouse.broker.kafka.protocol.specs import MESSAGES

Decoder = Callable[[bytes | memoryview, int], tuple[Any, int]]
Encoder = Callable[[Any, list], None]

ZERO_UUID = bytes(16)

# Array elements one message may decode to. A decoded element costs ~100x the 1-3 bytes it can
# take on the wire, so without a bound a 100 MB frame of tiny elements becomes gigabytes of dicts
# and a long stall of the event loop. Real requests stay far below it (10k partitions is large).
MAX_ELEMENTS = 200_000
_budget = [MAX_ELEMENTS]  # reset by each top-level decode; decoding never yields to other tasks


class DecodeError(ValueError):
    """The bytes are not a valid message of the version they claim to be."""


class EncodeError(ValueError):
    """A handler built a value its message cannot carry (a bug on our side)."""


def in_range(bounds: tuple[int, int | None] | None, version: int) -> bool:
    if bounds is None:
        return False
    first, last = bounds
    return first <= version and (last is None or version <= last)


# ---------------------------------------------------------------------------- varints
def read_uvarint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 28:
            raise DecodeError("varint longer than 5 bytes")


def uvarint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# ------------------------------------------------------------------------ primitives
_FIXED = {
    "int8": struct.Struct(">b"),
    "int16": struct.Struct(">h"),
    "uint16": struct.Struct(">H"),
    "int32": struct.Struct(">i"),
    "uint32": struct.Struct(">I"),
    "int64": struct.Struct(">q"),
    "float64": struct.Struct(">d"),
}
_INT16 = _FIXED["int16"]
_INT32 = _FIXED["int32"]
_INT8 = _FIXED["int8"]


def _fixed_decoder(kind: str) -> Decoder:
    codec = _FIXED[kind]
    size = codec.size
    unpack = codec.unpack_from

    def decode(buf: bytes | memoryview, pos: int) -> tuple[Any, int]:
        if pos + size > len(buf):
            raise DecodeError(f"truncated {kind}")
        return unpack(buf, pos)[0], pos + size

    return decode


def _fixed_encoder(kind: str) -> Encoder:
    pack = _FIXED[kind].pack

    def encode(value: Any, out: list) -> None:
        try:
            out.append(pack(value))
        except struct.error as exc:
            raise EncodeError(f"{value!r} is not a valid {kind}") from exc

    return encode


def _decode_bool(buf: bytes | memoryview, pos: int) -> tuple[bool, int]:
    if pos >= len(buf):
        raise DecodeError("truncated bool")
    return buf[pos] != 0, pos + 1


def _encode_bool(value: Any, out: list) -> None:
    out.append(b"\x01" if value else b"\x00")


def _decode_uuid(buf: bytes | memoryview, pos: int) -> tuple[bytes, int]:
    if pos + 16 > len(buf):
        raise DecodeError("truncated uuid")
    return bytes(buf[pos : pos + 16]), pos + 16


def _encode_uuid(value: Any, out: list) -> None:
    if isinstance(value, uuid.UUID):
        value = value.bytes
    if value is None:
        value = ZERO_UUID
    if len(value) != 16:
        raise EncodeError("a uuid is 16 bytes")
    out.append(bytes(value))


LengthReader = Callable[[bytes | memoryview, int], tuple[int, int]]


def _length_reader(compact: bool, wide: bool) -> LengthReader:
    """Reads a length prefix; returns -1 for null. Compact lengths are stored plus one."""
    if compact:

        def read(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
            n, pos = read_uvarint(buf, pos)
            return n - 1, pos

        return read
    codec = _INT32 if wide else _INT16

    def read_fixed(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
        if pos + codec.size > len(buf):
            raise DecodeError("truncated length")
        return codec.unpack_from(buf, pos)[0], pos + codec.size

    return read_fixed


def _length_writer(compact: bool, wide: bool) -> Callable[[int], bytes]:
    if compact:
        return lambda n: uvarint(n + 1)
    codec = _INT32 if wide else _INT16
    return codec.pack


def _bytes_decoder(kind: str, compact: bool, nullable: bool) -> Decoder:
    read_length = _length_reader(compact, wide=kind != "string")
    text = kind == "string"

    def decode(buf: bytes | memoryview, pos: int) -> tuple[Any, int]:
        n, pos = read_length(buf, pos)
        if n < 0:
            if n == -1 and nullable:
                return None, pos
            raise DecodeError(f"invalid {kind} length {n}")
        end = pos + n
        if end > len(buf):
            raise DecodeError(f"{kind} of {n} bytes runs past the end of the message")
        raw = bytes(buf[pos:end])
        if text:
            try:
                return raw.decode("utf-8"), end
            except UnicodeDecodeError as exc:
                raise DecodeError("string is not valid UTF-8") from exc
        return raw, end

    return decode


def _bytes_encoder(kind: str, compact: bool, nullable: bool) -> Encoder:
    write_length = _length_writer(compact, wide=kind != "string")
    text = kind == "string"
    records = kind == "records"

    def encode(value: Any, out: list) -> None:
        if value is None and records:
            value = b""  # librdkafka fails on a null record set; Kafka sends empty bytes
        if value is None:
            if not nullable:
                raise EncodeError(f"this {kind} field is not nullable")
            out.append(write_length(-1))
            return
        if text:
            value = value.encode("utf-8")
        if records and isinstance(value, list | tuple):
            out.append(write_length(sum(len(chunk) for chunk in value)))
            out.extend(value)
            return
        out.append(write_length(len(value)))
        out.append(value)

    return encode


# --------------------------------------------------------------------------- structs
def _default(spec: Mapping[str, Any], version: int) -> Any:
    kind = spec["type"]
    raw = spec.get("default")
    if kind.startswith("[]"):
        return None if raw == "null" else ()
    if "fields" in spec:
        return None
    if kind in ("string", "bytes", "records"):
        if raw == "null":
            return None
        if kind == "string":
            return raw or ""
        return b""
    if kind == "bool":
        return raw == "true"
    if kind == "uuid":
        return ZERO_UUID
    if kind == "float64":
        return float(raw) if raw else 0.0
    return int(raw, 0) if raw else 0


def _is_flexible(spec: Mapping[str, Any], version: int, message_flexible: bool) -> bool:
    if "flexible" in spec:
        return in_range(spec["flexible"], version)
    return message_flexible


def _field_codec(spec: Mapping[str, Any], version: int, flexible: bool) -> tuple[Decoder, Encoder]:
    kind = spec["type"]
    nullable = in_range(spec.get("nullable"), version)
    compact = _is_flexible(spec, version, flexible)
    if kind.startswith("[]"):
        element = kind[2:]
        element_spec = {**spec, "type": element}
        element_spec.pop("nullable", None)
        dec, enc = _field_codec(element_spec, version, flexible)
        return _array_decoder(dec, compact, nullable), _array_encoder(enc, compact, nullable)
    if "fields" in spec:
        dec, enc = _struct_codec(spec["fields"], version, flexible)
        if nullable:
            return _nullable_struct_decoder(dec), _nullable_struct_encoder(enc)
        return dec, enc
    if kind in _FIXED:
        return _fixed_decoder(kind), _fixed_encoder(kind)
    if kind == "bool":
        return _decode_bool, _encode_bool
    if kind == "uuid":
        return _decode_uuid, _encode_uuid
    if kind in ("string", "bytes", "records"):
        return _bytes_decoder(kind, compact, nullable), _bytes_encoder(kind, compact, nullable)
    raise ValueError(f"unknown field type {kind!r}")


def _array_decoder(element: Decoder, compact: bool, nullable: bool) -> Decoder:
    read_count = _length_reader(compact, wide=True)

    def decode(buf: bytes | memoryview, pos: int) -> tuple[Any, int]:
        n, pos = read_count(buf, pos)
        if n < 0:
            if n == -1 and nullable:
                return None, pos
            if n == -1:
                return [], pos  # some clients send null for non-nullable empty arrays
            raise DecodeError(f"invalid array length {n}")
        if n > len(buf) - pos:
            raise DecodeError(f"array of {n} elements runs past the end of the message")
        _budget[0] -= n
        if _budget[0] < 0:
            raise DecodeError(f"a message may hold at most {MAX_ELEMENTS} array elements")
        items = []
        append = items.append
        for _ in range(n):
            item, pos = element(buf, pos)
            append(item)
        return items, pos

    return decode


def _array_encoder(element: Encoder, compact: bool, nullable: bool) -> Encoder:
    write_count = _length_writer(compact, wide=True)

    def encode(value: Any, out: list) -> None:
        if value is None:
            if not nullable:
                value = ()
            else:
                out.append(write_count(-1))
                return
        out.append(write_count(len(value)))
        for item in value:
            element(item, out)

    return encode


def _nullable_struct_decoder(inner: Decoder) -> Decoder:
    def decode(buf: bytes | memoryview, pos: int) -> tuple[Any, int]:
        if pos >= len(buf):
            raise DecodeError("truncated struct marker")
        marker = _INT8.unpack_from(buf, pos)[0]
        if marker < 0:
            return None, pos + 1
        return inner(buf, pos + 1)

    return decode


def _nullable_struct_encoder(inner: Encoder) -> Encoder:
    def encode(value: Any, out: list) -> None:
        if value is None:
            out.append(b"\xff")
            return
        out.append(b"\x01")
        inner(value, out)

    return encode


def _struct_codec(
    fields: list[Mapping[str, Any]], version: int, flexible: bool
) -> tuple[Decoder, Encoder]:
    regular: list[tuple[str, Decoder, Encoder, Any]] = []
    tagged: dict[int, tuple[str, Decoder, Encoder, Any]] = {}
    absent: dict[str, Any] = {}
    for spec in fields:
        name = spec["name"]
        default = _default(spec, version)
        if not in_range(spec["versions"], version):
            absent[name] = default
            continue
        dec, enc = _field_codec(spec, version, flexible)
        if flexible and in_range(spec.get("tagged"), version):
            tagged[spec["tag"]] = (name, dec, enc, default)
        else:
            regular.append((name, dec, enc, default))
    tagged_defaults = {name: default for name, _, _, default in tagged.values()}
    tags = sorted(tagged.items())

    def decode(buf: bytes | memoryview, pos: int) -> tuple[dict[str, Any], int]:
        out = {**absent, **tagged_defaults}
        for name, dec, _, _ in regular:
            out[name], pos = dec(buf, pos)
        if flexible:
            pos = _read_tagged(buf, pos, tagged, out)
        return out, pos

    def encode(value: Mapping[str, Any], out: list) -> None:
        get = value.get
        for name, _, enc, default in regular:
            enc(get(name, default), out)
        if flexible:
            present = []
            for tag, (name, _, enc, default) in tags:
                item = get(name, default)
                if item is None or item == default or (default == () and not item):
                    continue
                chunks: list = []
                enc(item, chunks)
                present.append((tag, chunks))
            out.append(uvarint(len(present)))
            for tag, chunks in present:
                out.append(uvarint(tag))
                out.append(uvarint(sum(len(c) for c in chunks)))
                out.extend(chunks)

    return decode, encode


def _read_tagged(
    buf: bytes | memoryview,
    pos: int,
    tagged: Mapping[int, tuple[str, Decoder, Encoder, Any]],
    out: dict[str, Any],
) -> int:
    count, pos = read_uvarint(buf, pos)
    if count > len(buf) - pos:
        raise DecodeError(f"{count} tagged fields run past the end of the message")
    # A known field is decoded from a view cut at its end: slicing bytes would copy the whole
    # prefix for every tag, quadratic in a frame that repeats one tag many times.
    view = memoryview(buf)
    for _ in range(count):
        tag, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        end = pos + size
        if end > len(buf):
            raise DecodeError(f"tagged field {tag} of {size} bytes runs past the end")
        known = tagged.get(tag)
        if known is not None:
            name, dec, _, _ = known
            out[name], used = dec(view[:end], pos)
            if used != end:
                raise DecodeError(f"tagged field {tag} is {size} bytes but decodes to {used - pos}")
        pos = end
    return pos


# ------------------------------------------------------------------------ public API
class MessageCodec:
    """One message at one version: ``decode(buf) -> dict`` and ``encode(dict) -> bytes``."""

    def __init__(self, name: str, version: int) -> None:
        spec = MESSAGES[name]
        if not in_range(spec["valid"], version):
            raise ValueError(f"{name} has no version {version}")
        self.name = name
        self.version = version
        self.flexible = in_range(spec["flexible"], version)
        self._decode, self._encode = _struct_codec(spec["fields"], version, self.flexible)

    def decode(
        self, buf: bytes | memoryview, pos: int = 0, *, exact: bool = True
    ) -> dict[str, Any]:
        value, end = self.decode_from(buf, pos)
        if exact and end != len(buf):
            raise DecodeError(f"{len(buf) - end} bytes left over after {self.name} v{self.version}")
        return value

    def decode_from(self, buf: bytes | memoryview, pos: int = 0) -> tuple[dict[str, Any], int]:
        _budget[0] = MAX_ELEMENTS
        try:
            return self._decode(buf, pos)
        except DecodeError:
            raise
        except (struct.error, IndexError, ValueError, TypeError) as exc:
            raise DecodeError(f"malformed {self.name} v{self.version}: {exc}") from exc

    def encode_chunks(self, value: Mapping[str, Any], out: list) -> None:
        self._encode(value, out)

    def encode(self, value: Mapping[str, Any]) -> bytes:
        out: list = []
        self._encode(value, out)
        return b"".join(out)


@functools.cache
def codec(name: str, version: int) -> MessageCodec:
    return MessageCodec(name, version)


def valid_versions(name: str) -> tuple[int, int]:
    first, last = MESSAGES[name]["valid"]
    return first, last if last is not None else first


def api_names() -> dict[int, str]:
    """API key -> API name (``Produce``) for every API the spec tables carry."""
    return {
        spec["api_key"]: name.removesuffix("Request")
        for name, spec in MESSAGES.items()
        if spec["type"] == "request"
    }
