"""Our codec against kafka-python's, and against itself, for every served message and version.

kafka-python 3.0 ships its own spec-driven protocol classes, written independently of ours from
Kafka's JSON specs. Values are generated with hypothesis from our spec tables (strings of every
length class, nulls where nullable, arrays, tagged fields). Requests built and encoded by
kafka-python, header included, must decode through the listener's decode path to the same
values; responses we encode must decode in kafka-python to the same values. Every served
version, kafka-python's or not, must round-trip: ``encode(decode(x)) == x``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import pkgutil
import struct
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.schemas.fields.codecs import UUID, BitField, Bytes
from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.connection import response_header_flexible
from streamhouse.broker.kafka.protocol.codec import (
    ZERO_UUID,
    DecodeError,
    MessageCodec,
    codec,
    in_range,
    uvarint,
)
from streamhouse.broker.kafka.protocol.specs import MESSAGES

from tests.broker.kafka import fuzzing
from tests.broker.kafka.conftest import KafkaSocket
from tests.conftest import ServerProcess

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "gen_kafka_protocol", ROOT / "scripts" / "gen_kafka_protocol.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


snake = _load_generator().snake


# ------------------------------------------------------------------ value strategies
_INTS = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
# Short and long (a compact length past 127 takes a two-byte varint).
_TEXT = st.text(max_size=6) | st.text(min_size=127, max_size=160)
_BYTES = st.binary(max_size=6) | st.binary(min_size=127, max_size=160)


def value_strategy(spec: Mapping[str, Any], version: int) -> st.SearchStrategy[Any]:
    """Values one field may carry in ``version``, from its spec entry."""
    kind = spec["type"]
    if kind.startswith("[]"):
        element = {**spec, "type": kind[2:]}
        element.pop("nullable", None)
        nested = "fields" in spec
        items = st.lists(value_strategy(element, version), max_size=3 if nested else 4)
        if not nested:
            items |= st.lists(value_strategy(element, version), min_size=127, max_size=130)
        strategy = items
    elif "fields" in spec:
        strategy = struct_strategy(spec["fields"], version)
    elif kind in _INTS:
        strategy = st.integers(*_INTS[kind])
    elif kind == "float64":
        strategy = st.floats(allow_nan=False)
    elif kind == "bool":
        strategy = st.booleans()
    elif kind == "uuid":
        strategy = st.binary(min_size=16, max_size=16)
    elif kind == "string":
        strategy = _TEXT
    else:
        strategy = _BYTES
    if in_range(spec.get("nullable"), version):
        strategy = st.none() | strategy
    return strategy


def struct_strategy(
    fields: Iterable[Mapping[str, Any]], version: int
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            spec["name"]: value_strategy(spec, version)
            for spec in fields
            if in_range(spec["versions"], version)
        }
    )


def message_strategy(name: str, version: int) -> st.SearchStrategy[dict[str, Any]]:
    strategy = struct_strategy(MESSAGES[name]["fields"], version)
    if name == "ApiVersionsResponse":
        # An ApiVersions error is answered in v0 (clients decode any error as v0), so a
        # version-N body only ever carries error 0.
        strategy = strategy.map(lambda value: {**value, "error_code": 0})
    return strategy


def in_version(value: Mapping[str, Any], fields: Iterable[Mapping[str, Any]], version: int):
    """``value`` restricted to the fields ``version`` carries, recursively; records normalized."""
    out = {}
    for spec in fields:
        if not in_range(spec["versions"], version):
            continue
        item = value[spec["name"]]
        if spec["type"] == "records" and item is None:
            item = b""  # a null record set is sent as empty bytes (librdkafka needs that)
        elif item is not None and "fields" in spec:
            if spec["type"].startswith("[]"):
                item = [in_version(element, spec["fields"], version) for element in item]
            else:
                item = in_version(item, spec["fields"], version)
        elif isinstance(item, tuple):
            item = list(item)
        out[spec["name"]] = item
    return out


# ------------------------------------------------------------ kafka-python's classes
def _kafka_python_classes() -> dict[str, type]:
    import kafka.protocol

    for package in ("admin", "consumer", "metadata", "producer"):
        module = importlib.import_module(f"kafka.protocol.{package}")
        for info in pkgutil.iter_modules(module.__path__):
            importlib.import_module(f"kafka.protocol.{package}.{info.name}")
    importlib.import_module("kafka.protocol.sasl")
    assert kafka.protocol
    found: dict[str, type] = {}
    pending = [ApiMessage]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if getattr(cls, "_class_version", None) is None and "_json" in cls.__dict__:
            found.setdefault(cls.__name__, cls)
    return found


KP = _kafka_python_classes()
API_KEYS = {name: key for key, name in apis.NAMES.items()}


def kp_versions(name: str) -> range:
    """The served versions kafka-python's class for ``name`` can encode and decode."""
    low, high = apis.SUPPORTED[API_KEYS[name]]
    return range(low, min(high, KP[name + "Request"].max_version) + 1)


def _our_name(kp_field: Any, ours: Mapping[str, Any]) -> str:
    """kafka-python renames some fields (``authorized_operations``); match on the suffix."""
    name = snake(kp_field._name)
    if name in ours:
        return name
    (match,) = [candidate for candidate in ours if candidate.endswith("_" + name)]
    return match


def _kp_fields(kp_struct: Any, version: int) -> Iterable[Any]:
    return (f for f in kp_struct.fields.values() if f.for_version_q(version))


def from_kp(obj: Any, kp_struct: Any, our_fields: list, version: int) -> dict[str, Any]:
    """A kafka-python message or struct as our plain dict."""
    ours = {spec["name"]: spec for spec in our_fields}
    out = {}
    for field in _kp_fields(kp_struct, version):
        name = _our_name(field, ours)
        out[name] = _from_kp_value(getattr(obj, field.name), field, ours[name], version)
    return out


def _from_kp_value(value: Any, field: Any, spec: Mapping[str, Any], version: int) -> Any:
    if field.is_struct_array():
        if value is None:
            return None
        return [from_kp(item, field, spec["fields"], version) for item in value]
    if field.is_struct():
        return None if value is None else from_kp(value, field, spec["fields"], version)
    if field.is_array():
        return None if value is None else [_from_kp_simple(item, field.array_of) for item in value]
    return _from_kp_simple(value, field)


def _from_kp_simple(value: Any, field: Any) -> Any:
    kind = field._type
    if kind is UUID:
        return ZERO_UUID if value is None else value.bytes
    if kind is BitField:
        bits = sum(1 << bit for bit in (value if value is not None else {31}))
        return bits - 2**32 if bits >= 2**31 else bits
    if kind is Bytes and value is not None:
        return bytes(value)
    return value


def to_kp_kwargs(value: Mapping[str, Any], kp_struct: Any, our_fields: list, version: int):
    ours = {spec["name"]: spec for spec in our_fields}
    kwargs = {}
    for field in _kp_fields(kp_struct, version):
        name = _our_name(field, ours)
        kwargs[field.name] = _to_kp_value(value[name], field, ours[name], version)
    return kwargs


def _to_kp_value(value: Any, field: Any, spec: Mapping[str, Any], version: int) -> Any:
    if value is None:
        return None
    if field.is_struct_array():
        return [
            field.data_class(**to_kp_kwargs(item, field, spec["fields"], version)) for item in value
        ]
    if field.is_struct():
        return field.data_class(**to_kp_kwargs(value, field, spec["fields"], version))
    if field.is_array():
        return [_to_kp_simple(item, field.array_of) for item in value]
    return _to_kp_simple(value, field)


def _to_kp_simple(value: Any, field: Any) -> Any:
    if field._type is UUID:
        return uuid.UUID(bytes=value)
    if field._type is BitField:
        return {bit for bit in range(32) if value & (1 << bit)}
    return value


# ----------------------------------------------------------------------------- cases
def _cases(kafka_python_only: bool) -> list[Any]:
    out = []
    for api_key, api in sorted(apis.NAMES.items()):
        low, high = apis.SUPPORTED[api_key]
        versions = kp_versions(api) if kafka_python_only else range(low, high + 1)
        out += [pytest.param(api, v, id=f"{api}-v{v}") for v in versions]
    return out


KAFKA_PYTHON_CASES = _cases(kafka_python_only=True)
ALL_CASES = _cases(kafka_python_only=False)


@pytest.mark.parametrize(("api", "version"), KAFKA_PYTHON_CASES)
@EXAMPLES
@given(data=st.data())
def test_requests_kafka_python_encodes_decode_to_the_same_values(api, version, data):
    name = api + "Request"
    value = data.draw(message_strategy(name, version))
    kp_class = KP[name]
    request = kp_class[version](**to_kp_kwargs(value, kp_class._struct, _fields(name), version))
    request.with_header(correlation_id=1234, client_id="kafka-python-\u00e9")
    frame = request.encode(header=True)
    header, decoded = fuzzing.decode_request(frame)
    assert (header["request_api_key"], header["request_api_version"]) == (
        API_KEYS[api],
        version,
    )
    assert (header["correlation_id"], header["client_id"]) == (1234, "kafka-python-\u00e9")
    assert in_version(decoded, _fields(name), version) == in_version(value, _fields(name), version)


@pytest.mark.parametrize(("api", "version"), KAFKA_PYTHON_CASES)
@EXAMPLES
@given(data=st.data())
def test_responses_we_encode_decode_in_kafka_python_to_the_same_values(api, version, data):
    name = api + "Response"
    value = data.draw(message_strategy(name, version))
    encoded = codec(name, version).encode(value)
    kp_class = KP[name]
    decoded = kp_class.decode(encoded, version=version)
    expected = in_version(value, _fields(name), version)
    assert from_kp(decoded, kp_class._struct, _fields(name), version) == expected


@pytest.mark.parametrize(("api", "version"), ALL_CASES)
@EXAMPLES
@given(data=st.data())
def test_every_served_message_round_trips(api, version, data):
    for name in (api + "Request", api + "Response"):
        value = data.draw(message_strategy(name, version), label=name)
        message = codec(name, version)
        encoded = message.encode(value)
        decoded = message.decode(encoded)
        assert in_version(decoded, _fields(name), version) == in_version(
            value, _fields(name), version
        )
        assert message.encode(decoded) == encoded


@pytest.mark.parametrize("version", [0, 1, 2])
@EXAMPLES
@given(data=st.data())
def test_request_headers_round_trip(version, data):
    value = data.draw(struct_strategy(_fields("RequestHeader"), version))
    header = codec("RequestHeader", version)
    encoded = header.encode(value)
    assert in_version(header.decode(encoded), _fields("RequestHeader"), version) == value
    assert header.encode(header.decode(encoded)) == encoded


def test_a_record_set_given_as_chunks_encodes_like_the_joined_bytes():
    """Fetch responses hand stored batches over as a list, never concatenated first."""
    chunks = [b"batch-one", b"", b"batch-two" * 20]
    response = codec("FetchResponse", 12)

    def fetch(records: Any) -> dict[str, Any]:
        partition = {"partition_index": 0, "records": records}
        return {"responses": [{"topic": "t", "partitions": [partition]}]}

    encoded = response.encode(fetch(chunks))
    assert encoded == response.encode(fetch(b"".join(chunks)))
    decoded = KP["FetchResponse"].decode(encoded, version=12)
    assert bytes(decoded.responses[0].partitions[0].records) == b"".join(chunks)


def _fields(name: str) -> list:
    return MESSAGES[name]["fields"]


# ---------------------------------------------------------------------- tagged fields
def _with_future_tags(fields: list) -> list:
    """The fields plus two tagged fields a later spec could add, in every nested struct."""
    out = []
    for spec in fields:
        if "fields" in spec:
            spec = {**spec, "fields": _with_future_tags(spec["fields"])}
        out.append(spec)
    return [
        *out,
        {"name": "future_note", "type": "string", "versions": (0, None), "tag": 90,
         "tagged": (0, None)},
        {"name": "future_ids", "type": "[]int64", "versions": (0, None), "tag": 4000,
         "tagged": (0, None)},
    ]  # fmt: skip


@functools.cache
def _future_codec(name: str, version: int) -> MessageCodec:
    """A codec of ``name`` as a later spec with extra tagged fields would encode it."""
    key = "Future" + name
    MESSAGES[key] = {**MESSAGES[name], "fields": _with_future_tags(_fields(name))}
    try:
        return MessageCodec(key, version)  # compiled here; the table entry is not needed after
    finally:
        del MESSAGES[key]


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("FetchRequest", 12),
        ("ProduceRequest", 9),
        ("OffsetCommitRequest", 8),
        ("ApiVersionsResponse", 3),
        ("FetchResponse", 12),
        ("RequestHeader", 2),
    ],
)
@EXAMPLES
@given(data=st.data())
def test_unknown_tagged_fields_are_skipped_at_every_level(name, version, data):
    """A newer peer adds tagged fields anywhere; we decode what we know and skip the rest."""
    future = _future_codec(name, version)
    value = data.draw(struct_strategy(_with_future_tags(_fields(name)), version))
    encoded = future.encode(value)
    decoded = codec(name, version).decode(encoded)
    assert in_version(decoded, _fields(name), version) == in_version(value, _fields(name), version)


def test_a_known_tagged_field_decodes():
    body = codec("FetchRequest", 12).encode({"topics": []})
    assert body.endswith(b"\x00")  # no tagged fields
    cluster = uvarint(len(b"prod-1") + 1) + b"prod-1"
    tagged = body[:-1] + b"\x01" + b"\x00" + uvarint(len(cluster)) + cluster
    assert codec("FetchRequest", 12).decode(tagged)["cluster_id"] == "prod-1"
    # kafka-python reads the tag we write for a tagged response struct.
    partition = {"partition_index": 3, "current_leader": {"leader_id": 7, "leader_epoch": 2}}
    encoded = codec("FetchResponse", 12).encode(
        {"responses": [{"topic": "t", "partitions": [partition]}]}
    )
    leader = KP["FetchResponse"].decode(encoded, version=12).responses[0].partitions[0]
    assert (leader.current_leader.leader_id, leader.current_leader.leader_epoch) == (7, 2)


@pytest.mark.parametrize(
    "tag_section",
    [
        b"\x01\x00\x05\x03ab",  # cluster_id claims five bytes, holds three
        b"\x01\x00\x02\x03ab",  # cluster_id claims two bytes, its string needs three
        b"\x02\x00\x01\x00",  # two tags announced, one present
        b"\x01\x63\xff\xff\xff\xff\x0f",  # an unknown tag claiming 4 GB
    ],
)
def test_a_tagged_field_that_disagrees_with_its_size_is_a_decode_error(tag_section):
    body = codec("FetchRequest", 12).encode({"topics": []})
    with pytest.raises(DecodeError):
        codec("FetchRequest", 12).decode(body[:-1] + tag_section)


# ---------------------------------------------------- response headers on a real socket
def test_api_versions_answers_with_a_v0_header_even_in_flexible_versions(
    kafka_server: ServerProcess,
):
    assert not response_header_flexible(apis.API_VERSIONS, 3)
    with KafkaSocket(kafka_server.kafka_port) as sock:
        sock.send(
            apis.API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"}
        )
        frame = sock.receive_frame()
        # Header v0 is the correlation id alone: the flexible body starts right after it.
        (correlation,) = struct.unpack_from(">i", frame)
        answer = codec("ApiVersionsResponse", 3).decode(frame, 4)
        assert correlation == 1 and answer["error_code"] == 0
        kp = KP["ApiVersionsResponse"].decode(frame, version=3, header=True)
        assert kp.header.correlation_id == 1
        assert {k.api_key for k in kp.api_keys} == {e["api_key"] for e in answer["api_keys"]}
        # Other flexible responses carry header v1: an empty tag section after the id.
        sock.send(apis.METADATA, 9, {"topics": []})
        frame = sock.receive_frame()
        assert struct.unpack_from(">i", frame)[0] == 2 and frame[4] == 0
        assert codec("MetadataResponse", 9).decode(frame, 5)["brokers"]
