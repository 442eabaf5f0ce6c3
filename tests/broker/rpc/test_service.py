"""The gRPC API of a real `streamhouse serve` process, at the stub level.

These talk to the generated stubs directly (not the Python client) so they pin the wire
contract: statuses, reasons, per-partition results and offsets.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import grpc
import pytest
from streamhouse.broker.records import batches_to_arrow, build_batch
from streamhouse.broker.records.partitioner import partition_for_key
from streamhouse.broker.rpc.v1 import broker_pb2 as pb
from streamhouse.broker.rpc.v1 import broker_pb2_grpc as stubs


class Api:
    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(
            address, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        )
        self.admin = stubs.AdminStub(self.channel)
        self.produce = stubs.ProduceStub(self.channel)
        self.fetch = stubs.FetchStub(self.channel)
        self.groups = stubs.GroupsStub(self.channel)

    def create(self, name: str, partitions: int = 1, **configs: str) -> pb.TopicInfo:
        request = pb.CreateTopicRequest(name=name, partitions=partitions, configs=configs)
        return self.admin.CreateTopic(request, timeout=30).topic

    def send(self, topic: str, partition: int, values: list[bytes], acks=pb.ACKS_LEADER, **kw):
        batch = build_batch(values, **kw)
        request = pb.ProduceRequest(
            topic=topic,
            acks=acks,
            partitions=[pb.PartitionBatches(partition=partition, batches=[batch])],
        )
        return self.produce.Produce(request, timeout=30).results[0]

    def read_all(self, topic: str, partition: int, offset: int = 0) -> list[tuple[int, bytes]]:
        reply = self.fetch.Fetch(
            pb.FetchRequest(
                topic=topic,
                partitions=[
                    pb.FetchPartition(partition=partition, offset=offset, max_bytes=1 << 24)
                ],
                max_bytes=1 << 25,
            ),
            timeout=30,
        )
        part = reply.partitions[0]
        assert part.error.code == 0, part.error
        if not part.batches:
            return []
        table = batches_to_arrow(list(part.batches), partition)
        rows = zip(
            table.column("offset").to_pylist(), table.column("value").to_pylist(), strict=True
        )
        return [(o, v) for o, v in rows if o >= offset]


def status_of(call) -> tuple[grpc.StatusCode, dict[str, str]]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    error = info.value
    return error.code(), dict(error.trailing_metadata() or ())


def test_round_trip_with_dense_offsets_and_describe(server) -> None:
    api = Api(server.grpc_address)
    info = api.create("orders", 3, **{"retention.ms": "3600000"})
    assert info.partitions == 3 and info.configs["retention.ms"] == "3600000"
    first = api.send("orders", 1, [b"a", b"b", b"c"])
    second = api.send("orders", 1, [b"d"], acks=pb.ACKS_ALL)
    assert (first.base_offset, first.last_offset) == (0, 2)
    assert (second.base_offset, second.last_offset) == (3, 3)
    assert api.read_all("orders", 1) == [(0, b"a"), (1, b"b"), (2, b"c"), (3, b"d")]
    assert api.read_all("orders", 1, offset=2) == [(2, b"c"), (3, b"d")]
    described = api.admin.DescribeTopic(pb.DescribeTopicRequest(name="orders"), timeout=10)
    by_partition = {p.partition: p for p in described.partitions}
    assert by_partition[1].next_offset == 4 and by_partition[0].next_offset == 0
    assert by_partition[1].leader_address == server.grpc_address
    names = [t.name for t in api.admin.ListTopics(pb.ListTopicsRequest(), timeout=10).topics]
    assert names == ["orders"]  # internal topics are hidden by default
    internal = api.admin.ListTopics(pb.ListTopicsRequest(include_internal=True), timeout=10)
    assert any(t.internal for t in internal.topics)


def test_records_are_partitioned_like_kafka_clients_do(server) -> None:
    api = Api(server.grpc_address)
    api.create("keyed", 6)
    keys = [f"user-{i}".encode() for i in range(40)]
    reply = api.produce.Produce(
        pb.ProduceRequest(
            topic="keyed",
            records=[pb.Record(key=k, value=b"v-" + k) for k in keys],
        ),
        timeout=30,
    )
    assert all(r.error.code == 0 for r in reply.results)
    for partition in range(6):
        values = [v for _, v in api.read_all("keyed", partition)]
        expected = [b"v-" + k for k in keys if partition_for_key(k, 6) == partition]
        assert values == expected


def test_admin_config_update_add_partitions_delete(server) -> None:
    api = Api(server.grpc_address)
    api.create("cfg", 1)
    updated = api.admin.UpdateTopicConfig(
        pb.UpdateTopicConfigRequest(name="cfg", set={"retention.ms": "1000"}), timeout=10
    )
    assert updated.topic.configs["retention.ms"] == "1000"
    reset = api.admin.UpdateTopicConfig(
        pb.UpdateTopicConfigRequest(name="cfg", reset=["retention.ms"]), timeout=10
    )
    assert reset.topic.configs["retention.ms"] != "1000"
    grown = api.admin.AddPartitions(pb.AddPartitionsRequest(name="cfg", total=4), timeout=10)
    assert grown.topic.partitions == 4
    assert api.send("cfg", 3, [b"x"]).base_offset == 0
    api.admin.DeleteTopic(pb.DeleteTopicRequest(name="cfg"), timeout=30)
    code, trailers = status_of(
        lambda: api.admin.DescribeTopic(pb.DescribeTopicRequest(name="cfg"), timeout=10)
    )
    assert code == grpc.StatusCode.NOT_FOUND and trailers["streamhouse-error"] == "UNKNOWN_TOPIC"


def test_bad_requests_get_clear_statuses_and_store_nothing(server) -> None:
    api = Api(server.grpc_address)
    api.create("strict", 2, **{"max.message.bytes": "2000"})
    code = grpc.StatusCode
    cases = [
        (lambda: api.create("strict"), code.ALREADY_EXISTS, "TOPIC_EXISTS"),
        (lambda: api.create("b", 1, **{"segment.ms": ""}), code.INVALID_ARGUMENT, "INVALID_CONFIG"),
        (lambda: api.send("nope", 0, [b"x"]), code.NOT_FOUND, "UNKNOWN_TOPIC"),
        (lambda: api.send("strict", 7, [b"x"]), code.NOT_FOUND, "UNKNOWN_PARTITION"),
        (lambda: api.send("strict", 0, [b"x" * 5000]), code.INVALID_ARGUMENT, "MESSAGE_TOO_LARGE"),
    ]  # fmt: skip
    for call, expected, reason in cases:
        got, trailers = status_of(call)
        assert (got, trailers.get("streamhouse-error")) == (expected, reason)
    good = build_batch([b"ok"])
    corrupt = bytearray(build_batch([b"evil"]))
    corrupt[-1] ^= 0xFF  # breaks the CRC
    request = pb.ProduceRequest(
        topic="strict",
        partitions=[
            pb.PartitionBatches(partition=0, batches=[good]),
            pb.PartitionBatches(partition=1, batches=[bytes(corrupt)]),
        ],
    )
    code, trailers = status_of(lambda: api.produce.Produce(request, timeout=10))
    assert (code, trailers["streamhouse-error"]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "CORRUPT_MESSAGE",
    )
    for garbage in (b"", b"\x00" * 3, os.urandom(200)):
        bad = pb.ProduceRequest(
            topic="strict", partitions=[pb.PartitionBatches(partition=0, batches=[garbage])]
        )
        assert (
            status_of(lambda b=bad: api.produce.Produce(b, timeout=10))[0]
            == grpc.StatusCode.INVALID_ARGUMENT
        )
    assert api.read_all("strict", 0) == []  # nothing of the bad requests was stored
    assert api.read_all("strict", 1) == []
    assert api.send("strict", 0, [b"after"]).base_offset == 0  # and the server still serves
    raw = api.channel.unary_unary("/streamhouse.v1.Produce/Produce")
    code, trailers = status_of(lambda: raw(b"\xff\xff\xff\xff garbage protobuf", timeout=10))
    assert (code, trailers["streamhouse-error"]) == (code.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert api.send("strict", 0, [b"still"]).base_offset == 1


def test_long_poll_returns_when_data_arrives(server) -> None:
    api = Api(server.grpc_address)
    api.create("poll", 1)
    timer = threading.Timer(0.5, lambda: api.send("poll", 0, [b"late"]))
    timer.start()
    started = time.monotonic()
    reply = api.fetch.Fetch(
        pb.FetchRequest(
            topic="poll",
            partitions=[pb.FetchPartition(partition=0, offset=0)],
            max_wait_ms=20_000,
        ),
        timeout=30,
    )
    timer.join()
    assert reply.partitions[0].batches, "the long poll returned without the record"
    assert time.monotonic() - started < 15  # woke on data, not at the end of max_wait_ms
    empty = api.fetch.Fetch(
        pb.FetchRequest(
            topic="poll", partitions=[pb.FetchPartition(partition=0, offset=1)], max_wait_ms=200
        ),
        timeout=30,
    )
    assert list(empty.partitions[0].batches) == [] and empty.partitions[0].high_watermark == 1
    code, trailers = status_of(
        lambda: api.fetch.Fetch(
            pb.FetchRequest(topic="poll", partitions=[pb.FetchPartition(partition=0, offset=5)]),
            timeout=10,
        )
    )
    assert (code, trailers["streamhouse-error"]) == (
        grpc.StatusCode.OUT_OF_RANGE,
        "OFFSET_OUT_OF_RANGE",
    )


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_long_poll_for_more_than_is_ready_waits_without_spinning(server) -> None:
    api = Api(server.grpc_address)
    api.create("min-bytes", 1)
    api.send("min-bytes", 0, [b"small"])
    timer = threading.Timer(1.5, lambda: api.send("min-bytes", 0, [b"x" * 2000]))
    timer.start()
    cpu_before = _cpu_seconds(server.proc.pid)
    reply = api.fetch.Fetch(
        pb.FetchRequest(
            topic="min-bytes",
            partitions=[pb.FetchPartition(partition=0, offset=0)],
            max_wait_ms=20_000,
            min_bytes=1000,
        ),
        timeout=30,
    )
    timer.join()
    # Both records came back once enough bytes were there, and the server idled while waiting
    # (a poll that re-read the ready record in a loop burns a whole core for the wait).
    assert len(reply.partitions[0].batches) == 2
    assert _cpu_seconds(server.proc.pid) - cpu_before < 0.2


def test_stream_produce_answers_in_order_and_subscribe_follows(server) -> None:
    api = Api(server.grpc_address)
    api.create("stream", 2)

    def requests():
        for i in range(50):
            yield pb.ProduceRequest(
                topic="stream",
                request_id=i + 1,
                partitions=[
                    pb.PartitionBatches(partition=i % 2, batches=[build_batch([b"%d" % i] * 10)])
                ],
            )
        yield pb.ProduceRequest(topic="missing", request_id=99, partitions=[
            pb.PartitionBatches(partition=0, batches=[build_batch([b"x"])])])  # fmt: skip

    replies = list(api.produce.ProduceStream(requests(), timeout=60))
    assert [r.request_id for r in replies] == [*range(1, 51), 99]
    assert replies[-1].results[0].error.reason == "UNKNOWN_TOPIC"  # the stream survived it
    offsets = [r.results[0].base_offset for r in replies[:-1]]
    assert offsets[0::2] == list(range(0, 250, 10)) and offsets[1::2] == list(range(0, 250, 10))
    stream = api.fetch.Subscribe(
        pb.SubscribeRequest(
            topic="stream",
            partitions=[pb.FetchPartition(partition=0, offset=240)],
        ),
        timeout=30,
    )
    first = next(stream)
    assert first.partitions[0].batches
    threading.Timer(0.3, lambda: api.send("stream", 0, [b"new"])).start()
    second = next(stream)
    values = batches_to_arrow(list(second.partitions[0].batches), 0).column("value").to_pylist()
    assert values == [b"new"]
    stream.cancel()


def test_list_offsets_by_time(server) -> None:
    api = Api(server.grpc_address)
    api.create("times", 1)
    api.send("times", 0, [b"a", b"b"], timestamps=[1_000, 2_000])
    api.send("times", 0, [b"c"], timestamps=[3_000])

    def lookup(spec, ts=0):
        request = pb.ListOffsetsRequest(topic="times", spec=spec, timestamp_ms=ts)
        return api.fetch.ListOffsets(request, timeout=10).offsets[0].offset

    assert lookup(pb.OFFSET_SPEC_EARLIEST) == 0
    assert lookup(pb.OFFSET_SPEC_LATEST) == 3
    assert lookup(pb.OFFSET_SPEC_TIMESTAMP, 1_500) == 1
    assert lookup(pb.OFFSET_SPEC_TIMESTAMP, 3_000) == 2
    assert lookup(pb.OFFSET_SPEC_TIMESTAMP, 9_000) == -1


def test_graceful_shutdown_and_sigkill_at_acks_all_lose_nothing(start_server) -> None:
    server = start_server()
    api = Api(server.grpc_address)
    api.create("durable", 1)
    for i in range(20):
        api.send("durable", 0, [b"g%d" % i])
    assert server.stop() == 0
    restarted = start_server(data_dir=server.data_dir)
    api = Api(restarted.grpc_address)
    assert [v for _, v in api.read_all("durable", 0)] == [b"g%d" % i for i in range(20)]
    acked = []
    for i in range(30):
        acked.append(api.send("durable", 0, [b"k%d" % i], acks=pb.ACKS_ALL).base_offset)
    os.kill(restarted.proc.pid, signal.SIGKILL)
    restarted.proc.wait()
    again = start_server(data_dir=server.data_dir)
    rows = Api(again.grpc_address).read_all("durable", 0)
    assert [o for o, _ in rows] == list(range(50))  # dense, nothing lost or duplicated
    assert [v for _, v in rows[20:]] == [b"k%d" % i for i in range(30)]
    assert acked == list(range(20, 50))


def test_idempotent_retry_is_not_duplicated_and_a_gap_is_refused(server) -> None:
    api = Api(server.grpc_address)
    api.create("idem", 1)
    producer = api.produce.InitProducer(pb.InitProducerRequest(), timeout=10)
    ids = dict(producer_id=producer.producer_id, producer_epoch=producer.producer_epoch)
    first = api.send("idem", 0, [b"a", b"b"], base_sequence=0, **ids)
    retry = api.send("idem", 0, [b"a", b"b"], base_sequence=0, **ids)
    assert retry.base_offset == first.base_offset == 0
    code, trailers = status_of(lambda: api.send("idem", 0, [b"z"], base_sequence=7, **ids))
    assert (code, trailers["streamhouse-error"]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "OUT_OF_ORDER_SEQUENCE",
    )
    assert api.send("idem", 0, [b"c"], base_sequence=2, **ids).base_offset == 2
    bumped = api.produce.InitProducer(
        pb.InitProducerRequest(producer_id=producer.producer_id), timeout=10
    )
    assert bumped.producer_epoch > producer.producer_epoch
    new_ids = dict(producer_id=bumped.producer_id, producer_epoch=bumped.producer_epoch)
    assert api.send("idem", 0, [b"d"], base_sequence=0, **new_ids).base_offset == 3
    code, trailers = status_of(lambda: api.send("idem", 0, [b"old"], base_sequence=3, **ids))
    assert (code, trailers["streamhouse-error"]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PRODUCER_FENCED",
    )
    assert [v for _, v in api.read_all("idem", 0)] == [b"a", b"b", b"c", b"d"]
