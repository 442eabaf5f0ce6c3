"""Two `streamhouse serve` agents on one PostgreSQL and one S3 bucket.

Partitions spread over both; a request to the wrong agent names the leader; after `kill -9` of
one agent the other takes its partitions once the leases expire, and no record acknowledged
with acks=all is lost: offsets continue densely.
"""

from __future__ import annotations

import time

import grpc
import pytest
from streamhouse.broker.records import batches_to_arrow, build_batch
from streamhouse.broker.rpc.v1 import broker_pb2 as pb
from streamhouse.broker.rpc.v1 import broker_pb2_grpc as stubs

from tests.conftest import wait_for

PARTITIONS = 6


def leaders(admin: stubs.AdminStub, topic: str) -> dict[int, str]:
    described = admin.DescribeTopic(pb.DescribeTopicRequest(name=topic), timeout=10)
    return {p.partition: p.leader_address for p in described.partitions}


def produce(address: str, topic: str, partition: int, value: bytes) -> int:
    with grpc.insecure_channel(address) as channel:
        request = pb.ProduceRequest(
            topic=topic,
            acks=pb.ACKS_ALL,
            partitions=[pb.PartitionBatches(partition=partition, batches=[build_batch([value])])],
        )
        return stubs.ProduceStub(channel).Produce(request, timeout=30).results[0].base_offset


def read_values(address: str, topic: str, partition: int) -> list[tuple[int, bytes]]:
    with grpc.insecure_channel(address) as channel:
        reply = stubs.FetchStub(channel).Fetch(
            pb.FetchRequest(
                topic=topic,
                partitions=[pb.FetchPartition(partition=partition, offset=0, max_bytes=1 << 24)],
            ),
            timeout=30,
        )
    batches = list(reply.partitions[0].batches)
    if not batches:
        return []
    table = batches_to_arrow(batches, partition)
    return list(
        zip(table.column("offset").to_pylist(), table.column("value").to_pylist(), strict=True)
    )


def test_two_agents_spread_redirect_and_fail_over_without_loss(start_server, cluster_flags):
    first = start_server(*cluster_flags)
    second = start_server(*cluster_flags)
    addresses = {first.grpc_address, second.grpc_address}
    channel = grpc.insecure_channel(first.grpc_address)
    admin = stubs.AdminStub(channel)
    admin.CreateTopic(pb.CreateTopicRequest(name="spread", partitions=PARTITIONS), timeout=30)

    def spread() -> dict[int, str] | None:
        current = leaders(admin, "spread")
        counts = [list(current.values()).count(a) for a in addresses]
        led = set(current.values()) == addresses  # every partition has a live leader
        return current if led and all(c >= PARTITIONS // 2 - 1 for c in counts) else None

    current = wait_for(spread, 30, "partitions to spread over both agents")
    assert set(current.values()) == addresses

    # The wrong agent refuses and names the leader.
    partition, leader = next(iter(current.items()))
    wrong = (addresses - {leader}).pop()
    with grpc.insecure_channel(wrong) as other:
        request = pb.ProduceRequest(
            topic="spread",
            partitions=[pb.PartitionBatches(partition=partition, batches=[build_batch([b"x"])])],
        )
        with pytest.raises(grpc.RpcError) as info:
            stubs.ProduceStub(other).Produce(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    trailers = dict(info.value.trailing_metadata())
    assert (trailers["streamhouse-error"], trailers["streamhouse-leader"]) == ("NOT_LEADER", leader)

    # Every agent names the same group coordinator.
    coordinators = set()
    for address in addresses:
        with grpc.insecure_channel(address) as ch:
            reply = stubs.GroupsStub(ch).FindCoordinator(
                pb.FindCoordinatorRequest(group="orders-app"), timeout=10
            )
            coordinators.add(reply.address)
    assert len(coordinators) == 1 and coordinators <= addresses

    acked: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    for round_ in range(3):
        for p in range(PARTITIONS):
            value = b"before-%d-%d" % (p, round_)
            assert produce(current[p], "spread", p, value) == round_
            acked[p].append(value)

    second.kill()  # kill -9: no shutdown work, its local WAL is gone with it
    survivor = first.grpc_address

    def all_on_survivor() -> bool:
        return set(leaders(admin, "spread").values()) == {survivor}

    started = time.monotonic()
    wait_for(all_on_survivor, 30, "the survivor to take every partition")
    failover_s = time.monotonic() - started
    for p in range(PARTITIONS):
        value = b"after-%d" % p
        assert produce(survivor, "spread", p, value) == 3  # offsets continue densely
        acked[p].append(value)
    for p in range(PARTITIONS):
        rows = read_values(survivor, "spread", p)
        assert [o for o, _ in rows] == list(range(4))
        assert [v for _, v in rows] == acked[p]
    print(f"failover took {failover_s:.1f} s")
    channel.close()
