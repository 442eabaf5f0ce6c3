"""Option values are checked when a client is built, with messages naming the option."""

from __future__ import annotations

import pytest
from streamhouse.broker.client import AsyncAdminClient, AsyncConsumer, AsyncProducer
from streamhouse.broker.client.options import parse_acks, parse_compression, parse_servers
from streamhouse.broker.records import Compression
from streamhouse.broker.rpc.v1 import broker_pb2 as pb


@pytest.mark.parametrize(
    ("acks", "expected"),
    [
        ("leader", pb.ACKS_LEADER),
        (1, pb.ACKS_LEADER),
        ("all", pb.ACKS_ALL),
        ("ALL", pb.ACKS_ALL),
        (-1, pb.ACKS_ALL),
        ("-1", pb.ACKS_ALL),
        ("none", pb.ACKS_NONE),
        (0, pb.ACKS_NONE),
    ],
)
def test_acks_spellings(acks, expected) -> None:
    assert parse_acks(acks) == expected


@pytest.mark.parametrize("acks", [2, "some", None, True, 1.0])
def test_bad_acks(acks) -> None:
    with pytest.raises(ValueError, match="acks"):
        parse_acks(acks)


def test_compression_names() -> None:
    assert parse_compression("ZSTD") is Compression.ZSTD
    assert parse_compression(None) is Compression.NONE
    assert parse_compression(Compression.LZ4) is Compression.LZ4
    with pytest.raises(ValueError, match="compression must be one of"):
        parse_compression("brotli")


def test_server_lists() -> None:
    assert parse_servers("a:1, b:2,") == ["a:1", "b:2"]
    assert parse_servers("[::1]:50051") == ["[::1]:50051"]
    for bad in ["", "host", "host:port", ":50051", "host:0", "host:70000", 50051]:
        with pytest.raises(ValueError):
            parse_servers(bad)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: AsyncProducer(linger_ms=-1), "linger_ms"),
        (lambda: AsyncProducer(batch_bytes=0), "batch_bytes"),
        (lambda: AsyncProducer(max_in_flight=0), "max_in_flight"),
        (lambda: AsyncProducer(retry_backoff_ms=5000), "retry_backoff"),
        (lambda: AsyncProducer(compression="lzma"), "compression"),
        (lambda: AsyncProducer("nohost"), "host:port"),
        (lambda: AsyncConsumer(auto_offset_reset="middle"), "auto_offset_reset"),
        (lambda: AsyncConsumer(assignor="random"), "assignor"),
        (lambda: AsyncConsumer(group_id=""), "group_id"),
        (lambda: AsyncConsumer(fetch_max_bytes=0), "fetch_max_bytes"),
        (lambda: AsyncAdminClient(retries=-2), "retries"),
    ],
)
def test_clients_reject_bad_options(factory, match) -> None:
    with pytest.raises(ValueError, match=match):
        factory()


def test_consumer_modes_do_not_mix() -> None:
    lone = AsyncConsumer()
    with pytest.raises(ValueError, match="group_id"):
        lone.subscribe(["t"])
    lone.assign([("t", 0)])
    assert lone.assignment() == {("t", 0)}
    grouped = AsyncConsumer(group_id="g")
    grouped.subscribe("t")
    with pytest.raises(ValueError, match="cannot also assign"):
        grouped.assign([("t", 0)])
    manual = AsyncConsumer(group_id="g")
    manual.assign([("t", 1)])
    with pytest.raises(ValueError, match="cannot also subscribe"):
        manual.subscribe(["t"])
    with pytest.raises(ValueError, match="not assigned"):
        manual.seek(("t", 0), 5)
    with pytest.raises(ValueError, match="offset"):
        manual.seek(("t", 1), -1)
    with pytest.raises(ValueError, match="topic partition"):
        manual.assign([("t", -1)])
