"""Seeded valid request frames for every served API and version, and malformed mutations of them.

The fuzz tests need frames that are broken in the ways hostile or buggy clients break them:
flipped bits, cut-off ends, length and count prefixes claiming far more than is there, overlong
varints, bodies of one version under the header of another. Mutating valid frames reaches deep
into every message's grammar, which random bytes alone never do. ``prefixes`` walks a valid body
along the spec tables to find every length and count prefix, so inflation hits real ones.

``decode_request`` is the listener's own decode path (header check, header, body) without the
socket, so the in-process fuzzer exercises exactly what a connection runs.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.connection import request_header_version
from streamhouse.broker.kafka.protocol.codec import codec, in_range, read_uvarint, uvarint
from streamhouse.broker.kafka.protocol.specs import MESSAGES

HEADER = struct.Struct(">hhi")
_FIXED_SIZES = {"int8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "int64": 8}
_FIXED_SIZES.update({"float64": 8, "bool": 1, "uuid": 16})
_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
_TEXT = "abcxyz-._ 0123456789éß€😀"

SERVED: list[tuple[int, int]] = [
    (key, version)
    for key in sorted(apis.NAMES)
    for version in range(apis.SUPPORTED[key][0], apis.SUPPORTED[key][1] + 1)
]
"""Every (API key, version) the listener advertises."""


class Refused(Exception):
    """The listener closes the connection on this frame before decoding its body."""


# ----------------------------------------------------------------------- valid frames
def field_flexible(spec: Mapping[str, Any], version: int, message_flexible: bool) -> bool:
    """Compact encoding for this field (the header's client_id stays non-compact)."""
    if "flexible" in spec:
        return in_range(spec["flexible"], version)
    return message_flexible


def random_value(spec: Mapping[str, Any], version: int, rng: random.Random, depth: int = 0) -> Any:
    """A valid value for one field; arrays hold up to three elements, nulls where allowed."""
    kind = spec["type"]
    if in_range(spec.get("nullable"), version) and rng.random() < 0.15:
        return None
    if kind.startswith("[]"):
        element = {**spec, "type": kind[2:]}
        element.pop("nullable", None)
        count = rng.randint(0, 3 if depth < 3 else 1)
        return [random_value(element, version, rng, depth + 1) for _ in range(count)]
    if "fields" in spec:
        return random_struct(spec["fields"], version, rng, depth + 1)
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return rng.choice((0, 1, -1 if low else 2, low, high, rng.randint(low, high)))
    if kind == "float64":
        return rng.uniform(-1e9, 1e9)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "uuid":
        return rng.randbytes(16)
    if kind == "string":
        return "".join(rng.choice(_TEXT) for _ in range(rng.randint(0, 12)))
    return rng.randbytes(rng.randint(0, 40))  # bytes and records


def random_struct(
    fields: list[Mapping[str, Any]], version: int, rng: random.Random, depth: int = 0
) -> dict[str, Any]:
    return {
        spec["name"]: random_value(spec, version, rng, depth)
        for spec in fields
        if in_range(spec["versions"], version)
    }


def request_header(api_key: int, version: int, correlation_id: int = 1) -> bytes:
    return codec("RequestHeader", request_header_version(api_key, version)).encode(
        {
            "request_api_key": api_key,
            "request_api_version": version,
            "correlation_id": correlation_id,
            "client_id": "fuzz",
        }
    )


def request_frame(
    api_key: int, version: int, body: Mapping[str, Any], correlation_id: int = 1
) -> bytes:
    """Header plus body, without the size prefix."""
    body_bytes = codec(apis.NAMES[api_key] + "Request", version).encode(body)
    return request_header(api_key, version, correlation_id) + body_bytes


def random_frame(api_key: int, version: int, rng: random.Random) -> bytes:
    fields = MESSAGES[apis.NAMES[api_key] + "Request"]["fields"]
    return request_frame(api_key, version, random_struct(fields, version, rng), rng.randint(0, 9))


# ------------------------------------------------------------ the listener's decode path
def decode_request(frame: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decodes one frame as ``KafkaConnection`` does; raises ``Refused`` or ``DecodeError``."""
    if len(frame) < HEADER.size:
        raise Refused("shorter than a request header")
    api_key, version, _ = HEADER.unpack_from(frame)
    low, high = apis.SUPPORTED.get(api_key, (0, -1))
    if not low <= version <= high:
        raise Refused("API or version not served")
    header, pos = codec("RequestHeader", request_header_version(api_key, version)).decode_from(
        frame
    )
    body = codec(apis.NAMES[api_key] + "Request", version).decode(frame, pos, exact=False)
    return header, body


def is_api_versions_fallback(frame: bytes) -> bool:
    """ApiVersions in a version we do not serve is answered in v0, whatever its body holds."""
    if len(frame) < HEADER.size:
        return False
    api_key, version, _ = HEADER.unpack_from(frame)
    low, high = apis.SUPPORTED[apis.API_VERSIONS]
    return api_key == apis.API_VERSIONS and not low <= version <= high


# ---------------------------------------------------------------- length/count prefixes
Prefix = tuple[int, str]  # (offset, "int16" | "int32" | "uvarint")


def prefixes(frame: bytes) -> list[Prefix]:
    """Offsets of every length and count prefix in a valid frame (header included)."""
    api_key, version, _ = HEADER.unpack_from(frame)
    found: list[Prefix] = []
    header_version = request_header_version(api_key, version)
    pos = _walk_struct(
        MESSAGES["RequestHeader"]["fields"], header_version, header_version >= 2, frame, 0, found
    )
    spec = MESSAGES[apis.NAMES[api_key] + "Request"]
    _walk_struct(spec["fields"], version, in_range(spec["flexible"], version), frame, pos, found)
    return found


def _walk_struct(
    fields: list[Mapping[str, Any]],
    version: int,
    flexible: bool,
    buf: bytes,
    pos: int,
    found: list[Prefix],
) -> int:
    tagged: dict[int, Mapping[str, Any]] = {}
    for spec in fields:
        if not in_range(spec["versions"], version):
            continue
        if flexible and in_range(spec.get("tagged"), version):
            tagged[spec["tag"]] = spec
            continue
        pos = _walk_field(spec, version, flexible, buf, pos, found)
    if not flexible:
        return pos
    found.append((pos, "uvarint"))
    count, pos = read_uvarint(buf, pos)
    for _ in range(count):
        tag, pos = read_uvarint(buf, pos)
        found.append((pos, "uvarint"))
        size, pos = read_uvarint(buf, pos)
        if tag in tagged:
            _walk_field(tagged[tag], version, flexible, buf, pos, found)
        pos += size
    return pos


def _walk_field(
    spec: Mapping[str, Any],
    version: int,
    flexible: bool,
    buf: bytes,
    pos: int,
    found: list[Prefix],
) -> int:
    kind = spec["type"]
    compact = field_flexible(spec, version, flexible)
    if kind.startswith("[]"):
        element = {**spec, "type": kind[2:]}
        element.pop("nullable", None)
        found.append((pos, "uvarint" if compact else "int32"))
        count, pos = _read_length(buf, pos, compact, wide=True)
        for _ in range(max(count, 0)):
            pos = _walk_field(element, version, flexible, buf, pos, found)
        return pos
    if "fields" in spec:
        if in_range(spec.get("nullable"), version):
            if buf[pos] >= 0x80:
                return pos + 1
            pos += 1
        return _walk_struct(spec["fields"], version, flexible, buf, pos, found)
    if kind in _FIXED_SIZES:
        return pos + _FIXED_SIZES[kind]
    wide = kind != "string"
    found.append((pos, "uvarint" if compact else "int32" if wide else "int16"))
    length, pos = _read_length(buf, pos, compact, wide)
    return pos + max(length, 0)


def _read_length(buf: bytes, pos: int, compact: bool, wide: bool) -> tuple[int, int]:
    if compact:
        n, pos = read_uvarint(buf, pos)
        return n - 1, pos
    if wide:
        return struct.unpack_from(">i", buf, pos)[0], pos + 4
    return struct.unpack_from(">h", buf, pos)[0], pos + 2


def _varint_end(buf: bytes, pos: int) -> int:
    while buf[pos] & 0x80:
        pos += 1
    return pos + 1


# ------------------------------------------------------------------------- mutations
HUGE_INT32 = (2**31 - 1, 2**31 - 2, 2**30, 100_000_000, -2, -(2**31))
HUGE_INT16 = (2**15 - 1, 2**15 - 2, 20_000, -2, -(2**15))
HUGE_UVARINTS = (
    uvarint(2**31 - 1),
    uvarint(2**31),
    uvarint(2**32),
    uvarint(2**35 - 1),  # the largest value that fits five bytes
    b"\xff" * 5 + b"\x01",  # a sixth byte: longer than any int32 varint
    b"\xff" * 12 + b"\x01",
    b"\x80\x80\x80\x80\x00",  # overlong zero
)


def _inflate(frame: bytes, rng: random.Random) -> bytes:
    """One length or count prefix claims far more than the frame holds."""
    found = prefixes(frame)
    if not found:
        return _flip_bits(frame, rng)
    pos, kind = rng.choice(found)
    if kind == "int32":
        return frame[:pos] + struct.pack(">i", rng.choice(HUGE_INT32)) + frame[pos + 4 :]
    if kind == "int16":
        return frame[:pos] + struct.pack(">h", rng.choice(HUGE_INT16)) + frame[pos + 2 :]
    return frame[:pos] + rng.choice(HUGE_UVARINTS) + frame[_varint_end(frame, pos) :]


def _nudge(frame: bytes, rng: random.Random) -> bytes:
    """One length or count prefix is off by a little, so fields shift against the grammar."""
    found = prefixes(frame)
    if not found:
        return _truncate(frame, rng)
    pos, kind = rng.choice(found)
    delta = rng.choice((-3, -2, -1, 1, 2, 3, 7, 64))
    if kind == "uvarint":
        value, end = read_uvarint(frame, pos)
        return frame[:pos] + uvarint(max(value + delta, 0)) + frame[end:]
    fmt = ">i" if kind == "int32" else ">h"
    size = struct.calcsize(fmt)
    (value,) = struct.unpack_from(fmt, frame, pos)
    bound = 2 ** (size * 8 - 1)
    value = min(max(value + delta, -bound), bound - 1)
    return frame[:pos] + struct.pack(fmt, value) + frame[pos + size :]


def _flip_bits(frame: bytes, rng: random.Random) -> bytes:
    out = bytearray(frame)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def _flip_body_bits(frame: bytes, rng: random.Random) -> bytes:
    """Bit flips that leave the API key and version alone, so they reach the body decoder."""
    if len(frame) <= 8:
        return _flip_bits(frame, rng)
    return frame[:8] + _flip_bits(frame[8:], rng)


def _truncate(frame: bytes, rng: random.Random) -> bytes:
    return frame[: rng.randrange(len(frame))]


def _random_body(frame: bytes, rng: random.Random) -> bytes:
    return frame[:8] + rng.randbytes(rng.randint(0, 64))


def _random_frame(frame: bytes, rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(0, 64))


def _overwrite(frame: bytes, rng: random.Random) -> bytes:
    """A run of 0xff or 0x00 (the bytes that make lengths huge or null) lands somewhere."""
    start = rng.randrange(len(frame))
    run = bytes([rng.choice((0xFF, 0x00, 0x7F, 0x80))]) * rng.randint(1, 6)
    return frame[:start] + run + frame[start + len(run) :]


def _insert_or_delete(frame: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(len(frame))
    if rng.random() < 0.5:
        return frame[:start] + rng.randbytes(rng.randint(1, 8)) + frame[start:]
    return frame[:start] + frame[start + rng.randint(1, 8) :]


def _wrong_version(frame: bytes, rng: random.Random) -> bytes:
    """The body of one version under a header naming another (served or not)."""
    api_key, _version, correlation = HEADER.unpack_from(frame)
    low, high = apis.SUPPORTED[api_key]
    other = rng.choice((rng.randint(low, high), high + 1, low - 1, 99, -1, 2**15 - 1))
    return HEADER.pack(api_key, other, correlation) + frame[8:]


def _wrong_api(frame: bytes, rng: random.Random) -> bytes:
    """The body of one API under another API's key, or under a key nobody serves."""
    _, version, correlation = HEADER.unpack_from(frame)
    key = rng.choice((rng.choice(list(apis.NAMES)), rng.randint(-(2**15), 2**15 - 1), 24, 67))
    return HEADER.pack(key, version, correlation) + frame[8:]


def _tag_flood(frame: bytes, rng: random.Random) -> bytes:
    """Trailing bytes replaced by a tagged-field section that repeats or overstates tags."""
    count = rng.choice((1, 1000, 2**20))
    entries = b"".join(uvarint(rng.choice((0, 1, 2, 3, 7, 2**20))) + b"\x01\x00" for _ in range(50))
    return frame[:-1] + uvarint(count) + entries


def _splice(frame: bytes, rng: random.Random) -> bytes:
    key, version = rng.choice(SERVED)
    other = random_frame(key, version, rng)
    return frame[: rng.randrange(len(frame))] + other[rng.randrange(len(other)) :]


MUTATIONS: tuple[tuple[str, Callable[[bytes, random.Random], bytes], int], ...] = (
    ("inflate", _inflate, 6),
    ("nudge", _nudge, 3),
    ("flip-body-bits", _flip_body_bits, 4),
    ("flip-bits", _flip_bits, 1),
    ("truncate", _truncate, 3),
    ("overwrite", _overwrite, 2),
    ("insert-delete", _insert_or_delete, 2),
    ("wrong-version", _wrong_version, 2),
    ("wrong-api", _wrong_api, 1),
    ("random-body", _random_body, 1),
    ("random-frame", _random_frame, 1),
    ("tag-flood", _tag_flood, 1),
    ("splice", _splice, 1),
)
_NAMES = [name for name, _, weight in MUTATIONS for _ in range(weight)]
_BY_NAME = {name: mutate for name, mutate, _ in MUTATIONS}
_SECOND = ("flip-bits", "truncate", "overwrite", "insert-delete")


def base_frames(rng: random.Random, per_version: int = 4) -> list[bytes]:
    """Valid frames: ``per_version`` random requests of every served API and version."""
    return [random_frame(key, version, rng) for key, version in SERVED for _ in range(per_version)]


def malformed_frames(seed: int, count: int, bases: list[bytes]) -> Iterator[tuple[str, bytes]]:
    """``count`` mutated frames (mutation name, frame); the same seed gives the same frames."""
    rng = random.Random(seed)
    for _ in range(count):
        name = rng.choice(_NAMES)
        frame = rng.choice(bases)
        mutated = _BY_NAME[name](frame, rng)
        if mutated and rng.random() < 0.1:  # now and then a byte-level mutation on top
            mutated = _BY_NAME[rng.choice(_SECOND)](mutated, rng)
        yield name, mutated
