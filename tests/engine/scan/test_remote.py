"""Scans of partitions another agent leads: read from the metadata, the objects and the leader.

Agent A leads every partition and serves gRPC Fetch on loopback; agent B (never started, so it
leads and claims nothing) scans the same topic through ``open_scan``. Partition 0's in-memory
tail is larger than what the snapshot call brings, so the rest is fetched from A as the scan
goes. B must return exactly what A's own scan returns, never take a lease, fail clearly when A
stops answering, and read only what is committed once nobody leads.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from streamhouse.broker.log import LogConfig, LogManager
from streamhouse.broker.metadata import TopicConfig
from streamhouse.broker.records import build_batch
from streamhouse.broker.rpc.fetch import FetchServicer
from streamhouse.broker.rpc.v1 import broker_pb2_grpc
from streamhouse.broker.service import BrokerService
from streamhouse.engine.scan import ScanSpec, open_scan
from streamhouse.engine.scan.remote import SNAPSHOT_PARTITION_BYTES, RemotePartitionError

from tests.conftest import free_port

TOPIC = "events"
PARTITIONS = 2
LONG_LEASE_MS = 600_000  # A's lease loop first runs after 200 s: nothing moves during a test
RECORDS_PER_BATCH = 30
VALUE_BYTES = 20_000  # one batch is ~600 KB, so partition 0's tail spans several fetches


@dataclass
class Agents:
    leader: LogManager
    reader: LogManager
    server: grpc.aio.Server
    address: str


async def collect(scan) -> pa.Table:
    batches = [b async for b in scan.batches()]
    table = pa.Table.from_batches(batches, schema=scan.schema)
    return table.sort_by([("partition", "ascending"), ("offset", "ascending")])


def batch(partition: int, first: int) -> bytes:
    values = [os.urandom(VALUE_BYTES) for _ in range(RECORDS_PER_BATCH)]
    keys = [f"p{partition}-{first + i}".encode() for i in range(RECORDS_PER_BATCH)]
    return build_batch(values, keys=keys)


@pytest.fixture
async def agents(tmp_path: Path) -> AsyncIterator[Agents]:
    urls = {
        "metadata_url": f"sqlite:///{tmp_path / 'meta.db'}",
        "object_store_url": f"file://{tmp_path / 'objects'}",
    }
    address = f"127.0.0.1:{free_port()}"
    leader = await LogManager.open(
        LogConfig(
            data_dir=tmp_path / "a",
            agent_id="agent-a",
            advertised_address=address,
            lease_ttl_ms=LONG_LEASE_MS,
        ),
        **urls,
    )
    server = grpc.aio.server()
    broker_pb2_grpc.add_FetchServicer_to_server(FetchServicer(BrokerService(leader)), server)
    server.add_insecure_port(address)
    await server.start()
    config = TopicConfig(segment_bytes=64 * 1024 * 1024, segment_ms=3_600_000)
    await leader.create_topic(TOPIC, PARTITIONS, config)
    for p in range(PARTITIONS):
        plog = await leader.partition(TOPIC, p)
        await plog.append([batch(p, 0), batch(p, RECORDS_PER_BATCH)])
        await plog.flush()  # committed: segments in the object store, rows in the metadata
        tail = [batch(p, n * RECORDS_PER_BATCH) for n in range(2, 6 if p == 0 else 3)]
        await plog.append(tail)  # only in A's memory (and WAL)
        assert plog.committed_offset == 2 * RECORDS_PER_BATCH < plog.high_watermark
    tail_bytes = 4 * len(batch(0, 0))
    assert tail_bytes > 2 * SNAPSHOT_PARTITION_BYTES
    reader = LogManager.from_urls(LogConfig(data_dir=tmp_path / "b", agent_id="agent-b"), **urls)
    try:
        yield Agents(leader, reader, server, address)
    finally:
        await server.stop(None)
        await reader.metadata.close()
        await reader.store.close()
        await leader.close()


async def leases(manager: LogManager) -> list[tuple[str, int]]:
    return [
        (lease.holder, lease.epoch)
        for lease in sorted(await manager.metadata.list_leases(), key=lambda x: x.partition)
        if lease.topic == TOPIC
    ]


async def test_another_agents_partitions_read_exactly_as_their_leader_reads_them(agents):
    own = await collect(await open_scan(agents.leader, ScanSpec(TOPIC)))
    before = await leases(agents.leader)
    scan = await open_scan(agents.reader, ScanSpec(TOPIC))
    got = await collect(scan)
    assert got.equals(own)
    assert got.num_rows == (6 + 3) * RECORDS_PER_BATCH
    assert await leases(agents.reader) == before  # the reader claimed nothing
    assert agents.reader.local_partition(TOPIC, 0) is None

    # Pushed-down bounds apply to remote tails as to local ones.
    spec = ScanSpec(TOPIC, partitions=frozenset({0}), offset_min=95, offset_max=130)
    got = await collect(await open_scan(agents.reader, spec))
    assert got.column("offset").to_pylist() == list(range(95, 130))
    key = b"p1-70"
    got = await collect(await open_scan(agents.reader, ScanSpec(TOPIC, keys=frozenset({key}))))
    assert got.select(["partition", "offset"]).to_pylist() == [{"partition": 1, "offset": 70}]


async def test_a_scan_sees_nothing_appended_after_it_started(agents):
    scan = await open_scan(agents.reader, ScanSpec(TOPIC))
    plog = agents.leader.local_partition(TOPIC, 1)
    assert plog is not None
    before = plog.high_watermark
    await plog.append([batch(1, before)])
    got = await collect(scan)
    assert pc.max(got.column("offset")).as_py() == 6 * RECORDS_PER_BATCH - 1
    assert got.filter(pc.equal(got["partition"], 1)).num_rows == before


async def test_an_unreachable_leader_fails_the_scan_naming_partition_and_agent(agents):
    await agents.server.stop(None)
    async with asyncio.timeout(60):  # a guard against a hang, not a speed requirement
        with pytest.raises(RemotePartitionError) as info:
            await open_scan(agents.reader, ScanSpec(TOPIC))
    message = str(info.value)
    assert f"{TOPIC}[0]" in message and "agent-a" in message and agents.address in message
    assert info.value.leader_address == agents.address


async def test_a_leader_lost_mid_scan_fails_the_scan_naming_partition_and_agent(agents):
    scan = await open_scan(agents.reader, ScanSpec(TOPIC, partitions=frozenset({0})))
    await agents.server.stop(None)  # after the snapshot: the rest of the tail is unreachable
    async with asyncio.timeout(60):
        with pytest.raises(RemotePartitionError) as info:
            await collect(scan)
    assert f"{TOPIC}[0]" in str(info.value) and "agent-a" in str(info.value)


async def test_a_partition_nobody_leads_is_read_up_to_its_commit_and_not_claimed(agents):
    own = await collect(await open_scan(agents.leader, ScanSpec(TOPIC)))
    for p in range(PARTITIONS):  # A is gone as far as the cluster knows: its leases expire
        plog = agents.leader.local_partition(TOPIC, p)
        assert plog is not None
        await agents.leader.metadata.release_lease(TOPIC, p, "agent-a", plog.epoch)
    before = await leases(agents.reader)
    scan = await open_scan(agents.reader, ScanSpec(TOPIC))
    assert scan.stats.partitions_committed_only == PARTITIONS  # said in the query's stats
    got = await collect(scan)
    committed = own.filter(pc.less(own["offset"], 2 * RECORDS_PER_BATCH))
    assert got.equals(committed)
    assert await leases(agents.reader) == before  # still A's expired leases: nothing claimed
    assert await agents.reader.leader_of(TOPIC, 0) is None


async def test_a_partition_changing_hands_is_followed_until_it_answers(agents):
    own = await collect(await open_scan(agents.leader, ScanSpec(TOPIC)))
    plog = agents.leader.local_partition(TOPIC, 1)
    assert plog is not None
    plog.stop_appends("being handed over")  # its leader refuses fetches meanwhile
    asyncio.get_running_loop().call_later(0.5, plog.resume_appends)
    got = await collect(await open_scan(agents.reader, ScanSpec(TOPIC)))
    assert got.equals(own)
