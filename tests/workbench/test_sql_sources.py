"""Declared streams and tables through `POST /api/v1/sql` on real server processes.

A user declares a stream over records produced through the REST API (text and raw big-endian
bytes), reads its typed columns, restarts the server and still finds it, and a second agent of
a PostgreSQL cluster sees declarations the first one made.
"""

from __future__ import annotations

import base64
import json
import struct

import httpx

API = "/api/v1"


def sql(client: httpx.Client, statement: str) -> dict:
    response = client.post(f"{API}/sql", json={"sql": statement})
    assert response.status_code == 200, response.text
    return response.json()


def produce(client: httpx.Client, topic: str, records: list[dict], encoding="utf-8") -> None:
    body = {"records": records, "encoding": encoding}
    response = client.post(f"{API}/topics/{topic}/records", json=body)
    assert response.status_code == 200, response.text


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_declare_read_typed_columns_and_survive_a_restart(start_server) -> None:
    server = start_server()
    with httpx.Client(base_url=server.http_url, timeout=60) as client:
        created = sql(
            client,
            "CREATE STREAM clicks (user_id VARCHAR KEY, page VARCHAR, ms BIGINT) "
            "WITH (kafka_topic='clicks', value_format='JSON', partitions=2, timestamp='ms')",
        )
        assert created["rows"] == [["Stream created", "clicks", "clicks"]]
        produce(
            client,
            "clicks",
            [
                {"key": "u1", "value": json.dumps({"PAGE": "/a", "ms": 1_700_000_000_000})},
                {"key": "u2", "value": "garbage", "partition": 1},
            ],
        )
        answer = sql(client, "SELECT user_id, page, ROWTIME FROM clicks ORDER BY user_id")
        assert [c["type"] for c in answer["columns"]] == ["VARCHAR", "VARCHAR", "TIMESTAMP"]
        assert answer["rows"] == [["u1", "/a", "2023-11-14T22:13:20.000Z"], ["u2", None, None]]
        sql(
            client,
            "CREATE TABLE totals (id BIGINT PRIMARY KEY, total INT) "
            "WITH (kafka_topic='totals', value_format='KAFKA', partitions=1)",
        )
        produce(
            client,
            "totals",
            [{"key": b64(struct.pack(">q", 42)), "value": b64(struct.pack(">i", -5))}],
            encoding="base64",
        )
        assert sql(client, "SELECT id, total FROM totals")["rows"] == [[42, -5]]
        bad = client.post(f"{API}/sql", json={"sql": "SELECT pge FROM clicks"})
        assert bad.status_code == 400 and "'page'" in bad.json()["error"]["message"]
    assert server.stop() == 0

    again = start_server(data_dir=server.data_dir)
    with httpx.Client(base_url=again.http_url, timeout=60) as client:
        shown = sql(client, "SHOW STREAMS")["rows"]
        assert shown == [["clicks", "clicks", "KAFKA", "JSON"]]
        assert sql(client, "SHOW TABLES")["rows"] == [["totals", "totals", "KAFKA", "KAFKA"]]
        assert sql(client, "SELECT id, total FROM totals")["rows"] == [[42, -5]]


def test_agents_of_a_cluster_share_declarations(start_server, cluster_flags) -> None:
    first = start_server(*cluster_flags)
    second = start_server(*cluster_flags)
    with (
        httpx.Client(base_url=first.http_url, timeout=60) as one,
        httpx.Client(base_url=second.http_url, timeout=60) as two,
    ):
        sql(
            one,
            "CREATE STREAM events (id INT) WITH (kafka_topic='events', value_format='JSON', "
            "partitions=1)",
        )
        assert sql(two, "SHOW STREAMS")["rows"] == [["events", "events", "KAFKA", "JSON"]]
        duplicate = two.post(
            f"{API}/sql",
            json={"sql": "CREATE STREAM EVENTS (id INT) WITH (kafka_topic='events', "
                  "value_format='JSON')"},
        )  # fmt: skip
        assert duplicate.status_code == 400
        assert "already exists" in duplicate.json()["error"]["message"]
        sql(two, "DROP STREAM events")
        assert sql(one, "SHOW STREAMS")["rows"] == []
