"""The REST admin API in-process: a real log manager and group coordinator behind the FastAPI
app, reached through httpx's ASGI transport."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from streamhouse.broker.groups.coordinator import GroupCoordinator
from streamhouse.broker.log import LogConfig, LogManager
from streamhouse.broker.records import batches_to_arrow
from streamhouse.broker.records.partitioner import partition_for_key
from streamhouse.broker.service import BrokerService, GroupService
from streamhouse.workbench.http.app import create_app

API = "/api/v1"


@dataclass
class Agent:
    manager: LogManager
    coordinator: GroupCoordinator
    broker: BrokerService
    groups: GroupService
    client: httpx.AsyncClient


async def open_agent(tmp_path: Path, name: str) -> Agent:
    config = LogConfig(
        data_dir=tmp_path / name,
        agent_id=name,
        advertised_address=f"{name}.example:50051",
        seal_check_interval_ms=10,
    )
    manager = await LogManager.open(
        config,
        metadata_url=f"sqlite:///{tmp_path / 'meta.db'}",
        object_store_url=f"file://{tmp_path / 'objects'}",
    )
    coordinator = GroupCoordinator(manager.metadata)
    await coordinator.start()
    broker = BrokerService(manager)
    groups = GroupService(broker, coordinator)
    app = create_app(manager, broker=broker, groups=groups)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://rest")
    return Agent(manager, coordinator, broker, groups, client)


async def close_agent(agent: Agent) -> None:
    await agent.client.aclose()
    await agent.coordinator.close()
    await agent.manager.close()


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    opened = await open_agent(tmp_path, "agent-a")
    yield opened
    await close_agent(opened)


@pytest.fixture
def client(agent: Agent) -> httpx.AsyncClient:
    return agent.client


async def create(client: httpx.AsyncClient, name: str = "orders", partitions: int = 3, **kw):
    reply = await client.post(f"{API}/topics", json={"name": name, "partitions": partitions, **kw})
    assert reply.status_code == 201, reply.text
    return reply.json()


def error_of(reply: httpx.Response, status: int, reason: str) -> dict:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["reason"] == reason, error
    assert error["message"]
    return error


async def stored(agent: Agent, topic: str, partition: int) -> pa.RecordBatch:
    plog = await agent.manager.partition(topic, partition)
    return batches_to_arrow(await plog.read(0), partition)


# ------------------------------------------------------------------------------------ topics


async def test_topic_lifecycle(client: httpx.AsyncClient) -> None:
    reply = await client.post(
        f"{API}/topics",
        json={"name": "orders", "partitions": 2, "configs": {"retention.ms": 60000}},
    )
    assert reply.status_code == 201, reply.text
    assert reply.headers["location"] == f"{API}/topics/orders"
    created = reply.json()
    assert (created["name"], created["partitions"], created["internal"]) == ("orders", 2, False)
    assert created["configs"]["retention.ms"] == "60000"

    listed = (await client.get(f"{API}/topics")).json()["topics"]
    assert [t["name"] for t in listed] == ["orders"]
    internal = (await client.get(f"{API}/topics", params={"include_internal": "true"})).json()
    assert any(t["internal"] for t in internal["topics"])

    described = (await client.get(f"{API}/topics/orders")).json()
    assert described["topic"]["topic_id"] == created["topic_id"]
    assert [p["partition"] for p in described["partitions"]] == [0, 1]
    first = described["partitions"][0]
    assert first["log_start_offset"] == 0 and first["next_offset"] == 0
    assert {"committed_offset", "size_bytes", "segment_count", "leader_agent"} <= set(first)

    reply = await client.patch(
        f"{API}/topics/orders/config",
        json={"set": {"segment.bytes": "1048576"}, "reset": ["retention.ms"]},
    )
    assert reply.status_code == 200, reply.text
    configs = reply.json()["configs"]
    assert configs["segment.bytes"] == "1048576"
    assert configs["retention.ms"] != "60000"

    reply = await client.post(f"{API}/topics/orders/partitions", json={"total": 4})
    assert reply.status_code == 200 and reply.json()["partitions"] == 4
    assert len((await client.get(f"{API}/topics/orders")).json()["partitions"]) == 4

    reply = await client.delete(f"{API}/topics/orders")
    assert reply.status_code == 204 and reply.content == b""
    error_of(await client.get(f"{API}/topics/orders"), 404, "UNKNOWN_TOPIC")
    assert (await client.get(f"{API}/topics")).json()["topics"] == []


async def test_create_twice_is_409_unless_if_not_exists(client: httpx.AsyncClient) -> None:
    first = await create(client, "orders", 3)
    error_of(await client.post(f"{API}/topics", json={"name": "orders"}), 409, "TOPIC_EXISTS")
    reply = await client.post(
        f"{API}/topics", json={"name": "orders", "partitions": 1, "if_not_exists": True}
    )
    assert reply.status_code == 200
    assert reply.json()["topic_id"] == first["topic_id"] and reply.json()["partitions"] == 3


async def test_unknown_topic_is_404_on_every_topic_resource(client: httpx.AsyncClient) -> None:
    calls = [
        client.get(f"{API}/topics/nope"),
        client.patch(f"{API}/topics/nope/config", json={"set": {"retention.ms": "1"}}),
        client.post(f"{API}/topics/nope/partitions", json={"total": 2}),
        client.delete(f"{API}/topics/nope"),
        client.post(f"{API}/topics/nope/records", json={"records": [{"value": "x"}]}),
    ]
    for call in calls:
        error = error_of(await call, 404, "UNKNOWN_TOPIC")
        assert "nope" in error["message"]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"name": "t", "configs": {"retention.ms": "soon"}}, 400, "INVALID_CONFIG"),
        ({"name": "t", "configs": {"no.such.key": "1"}}, 400, "INVALID_CONFIG"),
        ({"name": "__mine"}, 400, "INVALID_REQUEST"),
        ({"name": "bad name!"}, 400, "INVALID_REQUEST"),
        ({"name": "t", "partitions": 0}, 422, "INVALID_REQUEST"),
        ({"name": "t", "partitions": 10**9}, 400, "INVALID_REQUEST"),
        ({"name": "t", "partitions": 2**63}, 400, "INVALID_REQUEST"),
        ({"name": "t", "partitions": "many"}, 422, "INVALID_REQUEST"),
        ({"name": "t", "configs": {"retention.ms": [1]}}, 422, "INVALID_REQUEST"),
        ({"name": "t", "colour": "red"}, 422, "INVALID_REQUEST"),
        ({"partitions": 1}, 422, "INVALID_REQUEST"),
        ({"name": ""}, 422, "INVALID_REQUEST"),
    ],
)
async def test_bad_create_requests_are_refused_and_create_nothing(
    client: httpx.AsyncClient, body: dict, status: int, reason: str
) -> None:
    error_of(await client.post(f"{API}/topics", json=body), status, reason)
    assert (await client.get(f"{API}/topics")).json()["topics"] == []


async def test_malformed_json_is_400_and_wrong_content_is_refused(
    client: httpx.AsyncClient,
) -> None:
    headers = {"content-type": "application/json"}
    reply = await client.post(f"{API}/topics", content=b'{"name": "t",', headers=headers)
    assert "malformed JSON" in error_of(reply, 400, "INVALID_REQUEST")["message"]
    reply = await client.post(f"{API}/topics", content=b"\xff\xfe\x00", headers=headers)
    error_of(reply, 400, "INVALID_REQUEST")
    plain = {"content-type": "text/plain"}
    error_of(
        await client.post(f"{API}/topics", content=b"x", headers=plain), 422, "INVALID_REQUEST"
    )
    error_of(await client.post(f"{API}/topics", json=["orders"]), 422, "INVALID_REQUEST")
    assert (await client.get(f"{API}/topics")).json()["topics"] == []


async def test_bad_config_updates_and_partition_counts_change_nothing(
    client: httpx.AsyncClient,
) -> None:
    await create(client, "orders", 2)
    before = (await client.get(f"{API}/topics/orders")).json()
    url = f"{API}/topics/orders"
    error_of(
        await client.patch(f"{url}/config", json={"set": {"retention.ms": "-5x"}}),
        400,
        "INVALID_CONFIG",
    )
    error_of(await client.patch(f"{url}/config", json={"reset": ["nope"]}), 400, "INVALID_CONFIG")
    error_of(await client.post(f"{url}/partitions", json={"total": 1}), 400, "INVALID_REQUEST")
    error_of(await client.post(f"{url}/partitions", json={"total": 0}), 422, "INVALID_REQUEST")
    assert (await client.get(url)).json() == before


async def test_resources_answer_503_until_the_services_are_assigned(agent: Agent) -> None:
    app = create_app(agent.manager)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rest") as early:
        assert (await early.get("/health")).status_code == 200
        error_of(await early.get(f"{API}/topics"), 503, "NOT_READY")
        error_of(await early.get(f"{API}/groups"), 503, "NOT_READY")
        app.state.broker = agent.broker
        app.state.groups = agent.groups
        assert (await early.get(f"{API}/topics")).json() == {"topics": []}
        assert (await early.get(f"{API}/groups")).json() == {"groups": []}


async def test_unknown_routes_and_methods_use_the_error_format(client: httpx.AsyncClient) -> None:
    error_of(await client.get(f"{API}/nothing"), 404, "NOT_FOUND")
    reply = await client.put(f"{API}/topics")
    error_of(reply, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in reply.headers["allow"]
    assert (await client.get("/nothing")).json() == {"detail": "Not Found"}


async def test_openapi_documents_every_resource(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    expected = {
        f"{API}/topics": {"get", "post"},
        f"{API}/topics/{{name}}": {"get", "delete"},
        f"{API}/topics/{{name}}/config": {"patch"},
        f"{API}/topics/{{name}}/partitions": {"post"},
        f"{API}/topics/{{name}}/records": {"post"},
        f"{API}/groups": {"get"},
        f"{API}/groups/{{group}}": {"get", "delete"},
        f"{API}/groups/{{group}}/reset-offsets": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    schemas = spec["components"]["schemas"]
    assert {"CreateTopic", "ProduceRecords", "ResetOffsets", "ErrorBody"} <= set(schemas)
    assert (await client.get("/docs")).status_code == 200


# ----------------------------------------------------------------------------------- records


async def test_records_round_trip_with_keys_headers_and_partitions(agent: Agent) -> None:
    client = agent.client
    await create(client, "orders", 3)
    records = [
        {"key": "alice", "value": "a1", "headers": {"source": "web", "trace": None}},
        {"key": "bob", "value": "b1"},
        {"key": "alice", "value": "a2"},
        {"value": "unkeyed-1"},
        {"value": "unkeyed-2"},
        {"value": "unkeyed-3"},
        {"key": "pinned", "value": "p", "partition": 2, "timestamp_ms": 1234},
        {"key": "tombstone", "value": None},
        {"value": "héllo ✓"},
    ]
    reply = await client.post(f"{API}/topics/orders/records", json={"records": records})
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["record_count"] == len(records)
    offsets = {p["partition"]: p for p in result["partitions"]}
    assert sum(p["record_count"] for p in offsets.values()) == len(records)
    assert all(p["error"] is None for p in offsets.values())

    rows = []
    for partition in range(3):
        table = (await stored(agent, "orders", partition)).to_pylist()
        if partition in offsets:
            entry = offsets[partition]
            assert [r["offset"] for r in table] == list(
                range(entry["base_offset"], entry["last_offset"] + 1)
            )
        rows += table
    by_value = {r["value"]: r for r in rows}
    assert len(rows) == len(records)
    for key in ("alice", "bob", "tombstone"):
        expected = partition_for_key(key.encode(), 3)
        assert {r["partition"] for r in rows if r["key"] == key.encode()} == {expected}
    alice = [r for r in rows if r["key"] == b"alice"]
    assert [r["value"] for r in sorted(alice, key=lambda r: r["offset"])] == [b"a1", b"a2"]
    assert by_value[b"p"]["partition"] == 2
    assert by_value[b"p"]["timestamp"].timestamp() * 1000 == 1234
    unkeyed = [by_value[f"unkeyed-{i}".encode()]["partition"] for i in (1, 2, 3)]
    assert sorted(unkeyed) == [0, 1, 2], "round robin spreads unkeyed records"
    assert by_value["héllo ✓".encode()]["key"] is None
    assert by_value[b"a1"]["headers"] == [
        {"key": "source", "value": b"web"},
        {"key": "trace", "value": None},
    ]
    tombstone = next(r for r in rows if r["key"] == b"tombstone")
    assert tombstone["value"] is None


async def test_round_robin_continues_across_requests(agent: Agent) -> None:
    await create(agent.client, "ticks", 2)
    for i in range(4):
        body = {"records": [{"value": f"t{i}"}], "acks": "all"}
        reply = await agent.client.post(f"{API}/topics/ticks/records", json=body)
        assert reply.status_code == 200, reply.text
    counts = [(await stored(agent, "ticks", p)).num_rows for p in (0, 1)]
    assert counts == [2, 2]


async def test_base64_records_carry_arbitrary_bytes(agent: Agent) -> None:
    await create(agent.client, "bin", 1)
    raw_key, raw_value = b"\x00\xffkey", bytes(range(256))
    body = {
        "encoding": "base64",
        "acks": "none",
        "records": [
            {
                "key": base64.b64encode(raw_key).decode(),
                "value": base64.b64encode(raw_value).decode(),
                "headers": {"h": base64.b64encode(b"\x01\x02").decode()},
            }
        ],
    }
    reply = await agent.client.post(f"{API}/topics/bin/records", json=body)
    assert reply.status_code == 200, reply.text
    row = (await stored(agent, "bin", 0)).to_pylist()[0]
    assert (row["key"], row["value"]) == (raw_key, raw_value)
    assert row["headers"] == [{"key": "h", "value": b"\x01\x02"}]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"encoding": "base64", "records": [{"value": "not base64!"}]}, 400, "INVALID_REQUEST"),
        (
            {"encoding": "base64", "records": [{"value": "AA==", "headers": {"h": "%%"}}]},
            400,
            "INVALID_REQUEST",
        ),
        ({"records": [{"value": "ok"}, {"value": "\ud800"}]}, 400, "INVALID_REQUEST"),
        ({"records": [{"value": "x", "partition": 7}]}, 404, "UNKNOWN_PARTITION"),
        ({"records": [{"value": "x", "partition": -1}]}, 422, "INVALID_REQUEST"),
        ({"records": [{"value": "x", "partition": 2**63}]}, 422, "INVALID_REQUEST"),
        ({"records": [{"value": "x", "timestamp_ms": 2**64}]}, 422, "INVALID_REQUEST"),
        ({"records": [{"value": "x", "timestamp_ms": -1}]}, 422, "INVALID_REQUEST"),
        ({"records": [{"value": "x", "headers": {"h": 1}}]}, 422, "INVALID_REQUEST"),
        ({"records": {"value": "x"}}, 422, "INVALID_REQUEST"),
        ({"records": []}, 422, "INVALID_REQUEST"),
        ({"records": [{"value": 5}]}, 422, "INVALID_REQUEST"),
        ({"records": [{"value": "x"}], "acks": "some"}, 422, "INVALID_REQUEST"),
        ({"records": [{"value": "x"}], "encoding": "latin-1"}, 422, "INVALID_REQUEST"),
    ],
)
async def test_bad_records_are_refused_and_nothing_is_stored(
    agent: Agent, body: dict, status: int, reason: str
) -> None:
    await create(agent.client, "orders", 1)
    reply = await agent.client.post(
        f"{API}/topics/orders/records",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    error_of(reply, status, reason)
    assert (await stored(agent, "orders", 0)).num_rows == 0


async def test_oversize_produce_requests_are_413_and_store_nothing(agent: Agent) -> None:
    await create(agent.client, "orders", 1)
    url = f"{API}/topics/orders/records"
    too_many = {"records": [{}] * 10_001}
    error_of(await agent.client.post(url, json=too_many), 413, "MESSAGE_TOO_LARGE")
    big = {"records": [{"value": "x" * (1024 * 1024)}]}
    error_of(await agent.client.post(url, json=big), 413, "MESSAGE_TOO_LARGE")

    async def chunked():
        yield b'{"records": [{"value": "'
        for _ in range(20):
            yield b"y" * 65536
        yield b'"}]}'

    reply = await agent.client.post(
        url, content=chunked(), headers={"content-type": "application/json"}
    )
    error_of(reply, 413, "MESSAGE_TOO_LARGE")
    assert (await stored(agent, "orders", 0)).num_rows == 0
    exactly = {"records": [{}] * 10_000}
    reply = await agent.client.post(url, json=exactly)
    assert reply.status_code == 200, reply.text
    assert (await stored(agent, "orders", 0)).num_rows == 10_000


# ------------------------------------------------------------------------------------ groups


async def join(agent: Agent, group: str, topic: str) -> tuple[str, int]:
    async def partitions_for(name: str) -> int:
        return (await agent.broker.topic(name)).partitions

    joined = await agent.coordinator.join_with_assignment(
        group,
        "",
        client_id="rest-test",
        client_host="127.0.0.1",
        topics=[topic],
        assignor="range",
        owned=[],
        session_timeout_ms=30_000,
        rebalance_timeout_ms=5_000,
        partitions_for=partitions_for,
    )
    return joined.member_id, joined.generation_id


async def test_group_describe_reset_and_delete(agent: Agent) -> None:
    client = agent.client
    await create(client, "orders", 2)
    records = [{"value": f"v{i}", "partition": i % 2, "timestamp_ms": 1000 * i} for i in range(10)]
    reply = await client.post(f"{API}/topics/orders/records", json={"records": records})
    assert reply.status_code == 200, reply.text
    member, generation = await join(agent, "billing", "orders")
    offsets = [("orders", 0, 2, ""), ("orders", 1, 5, "")]
    await agent.groups.commit("billing", member, generation, offsets)

    listed = (await client.get(f"{API}/groups")).json()["groups"]
    assert listed == [
        {"group": "billing", "state": "Stable", "protocol_type": "consumer", "members": 1}
    ]
    described = (await client.get(f"{API}/groups/billing")).json()
    assert described["state"] == "Stable"
    assert [m["member_id"] for m in described["members"]] == [member]
    assert described["members"][0]["assignment"] == {"orders": [0, 1]}
    lags = {
        (o["partition"], o["committed_offset"], o["end_offset"], o["lag"])
        for o in described["offsets"]
    }
    assert lags == {(0, 2, 5, 3), (1, 5, 5, 0)}
    assert described["total_lag"] == 3

    reset = {"topic": "orders", "to": "earliest"}
    error_of(
        await client.post(f"{API}/groups/billing/reset-offsets", json=reset), 409, "GROUP_NOT_EMPTY"
    )
    error_of(await client.delete(f"{API}/groups/billing"), 409, "GROUP_NOT_EMPTY")
    await agent.coordinator.leave("billing", member)

    dry = {"topic": "orders", "to": "timestamp", "value": 4000, "dry_run": True}
    reply = await client.post(f"{API}/groups/billing/reset-offsets", json=dry)
    assert reply.status_code == 200, reply.text
    assert reply.json()["offsets"] == [
        {"topic": "orders", "partition": 0, "offset": 2},
        {"topic": "orders", "partition": 1, "offset": 2},
    ]
    committed = (await client.get(f"{API}/groups/billing")).json()["offsets"]
    assert [o["committed_offset"] for o in committed] == [2, 5], "dry run commits nothing"

    real = {"topic": "orders", "to": "offset", "value": 1, "partitions": [1]}
    reply = await client.post(f"{API}/groups/billing/reset-offsets", json=real)
    assert reply.json() == {
        "group": "billing",
        "dry_run": False,
        "offsets": [{"topic": "orders", "partition": 1, "offset": 1}],
    }
    committed = (await client.get(f"{API}/groups/billing")).json()
    assert [o["committed_offset"] for o in committed["offsets"]] == [2, 1]
    assert committed["state"] == "Empty" and committed["total_lag"] == 7

    assert (await client.delete(f"{API}/groups/billing")).status_code == 204
    error_of(await client.get(f"{API}/groups/billing"), 404, "UNKNOWN_GROUP")
    assert (await client.get(f"{API}/groups")).json() == {"groups": []}


async def test_group_errors(agent: Agent) -> None:
    client = agent.client
    await create(client, "orders", 1)
    error_of(await client.get(f"{API}/groups/ghost"), 404, "UNKNOWN_GROUP")
    error_of(await client.delete(f"{API}/groups/ghost"), 404, "UNKNOWN_GROUP")
    url = f"{API}/groups/ghost/reset-offsets"
    error_of(await client.post(url, json={"topic": "nope", "to": "latest"}), 404, "UNKNOWN_TOPIC")
    error_of(
        await client.post(url, json={"topic": "orders", "to": "latest", "partitions": [3]}),
        404,
        "UNKNOWN_PARTITION",
    )
    error_of(
        await client.post(url, json={"topic": "orders", "to": "offset", "value": -1}),
        400,
        "INVALID_REQUEST",
    )
    error_of(
        await client.post(url, json={"topic": "orders", "to": "yesterday"}), 422, "INVALID_REQUEST"
    )
    error_of(await client.post(url, json={"to": "latest"}), 422, "INVALID_REQUEST")
    for hostile in ({"value": 2**64}, {"partitions": [2**40]}, {"partitions": [-1]}):
        body = {"topic": "orders", "to": "offset", **hostile}
        error_of(await client.post(url, json=body), 422, "INVALID_REQUEST")


async def test_group_calls_on_another_agent_name_the_coordinator(
    agent: Agent, tmp_path: Path
) -> None:
    assert await agent.manager.is_coordinator("billing")
    other = await open_agent(tmp_path, "agent-b")
    try:
        for call in (
            other.client.get(f"{API}/groups/billing"),
            other.client.delete(f"{API}/groups/billing"),
            other.client.post(
                f"{API}/groups/billing/reset-offsets", json={"topic": "t", "to": "latest"}
            ),
        ):
            error = error_of(await call, 503, "NOT_COORDINATOR")
            assert error["leader_address"] == "agent-a.example:50051"
    finally:
        await close_agent(other)


# ------------------------------------------------------------------------ real server process


def test_rest_api_of_a_real_server(server) -> None:
    """`streamhouse serve` wires the services in: records produced over REST are read over gRPC."""
    from streamhouse.broker.client import Consumer, TopicPartition

    with httpx.Client(base_url=server.http_url, timeout=30) as http:
        reply = http.post(f"{API}/topics", json={"name": "web", "partitions": 2})
        assert reply.status_code == 201, reply.text
        records = [{"key": f"user-{i}", "value": f"visit {i}"} for i in range(20)]
        reply = http.post(f"{API}/topics/web/records", json={"records": records, "acks": "all"})
        assert reply.status_code == 200, reply.text
        described = http.get(f"{API}/topics/web").json()
        assert sum(p["next_offset"] for p in described["partitions"]) == 20
        assert all(p["leader_address"] == server.grpc_address for p in described["partitions"])
        assert http.get(f"{API}/groups").json() == {"groups": []}
        error_of(http.get(f"{API}/topics/nope"), 404, "UNKNOWN_TOPIC")

        with Consumer(server.grpc_address, auto_offset_reset="earliest") as consumer:
            consumer.assign([TopicPartition("web", 0), TopicPartition("web", 1)])
            got = []
            while len(got) < 20:
                got += consumer.poll(timeout_ms=5000)
        assert sorted(r.value for r in got) == sorted(f"visit {i}".encode() for i in range(20))
        for record in got:
            assert record.partition == partition_for_key(record.key, 2)

        assert http.delete(f"{API}/topics/web").status_code == 204
        error_of(http.get(f"{API}/topics/web"), 404, "UNKNOWN_TOPIC")
