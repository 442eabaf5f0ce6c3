"""`POST /api/v1/sql` and `streamctl sql` against a real server process.

Records are produced over REST; the oracle is DuckDB run directly on the same rows, rebuilt
from the produce responses (partition and offset of every record), so the server's answers are
checked against rows nobody read back through the server.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import pyarrow as pa
import pytest
from streamhouse.broker.records import ARROW_SCHEMA

from ..conftest import ServerProcess, free_port
from .sql_oracle import OracleServer

API = "/api/v1"
STATUSES = ["new", "paid", "sent"]
STREAMCTL = [sys.executable, "-m", "streamhouse.workbench.streamctl"]


def order(i: int) -> dict:
    value = {"id": i, "amount": i * 10 % 7, "status": STATUSES[i % 3]}
    return {"key": f"c{i % 5}", "value": json.dumps(value), "partition": i % 3}


def produce(client: httpx.Client, topic: str, records: list[dict]) -> list[dict]:
    """Produces `records`; returns them with the partition and offset each was given."""
    response = client.post(f"{API}/topics/{topic}/records", json={"records": records})
    assert response.status_code == 200, response.text
    base = {p["partition"]: p["base_offset"] for p in response.json()["partitions"]}
    placed = []
    seen: dict[int, int] = {}
    for record in records:
        p = record.get("partition", 0)
        placed.append({**record, "partition": p, "offset": base[p] + seen.get(p, 0)})
        seen[p] = seen.get(p, 0) + 1
    return placed


def arrow_of(records: list[dict], timestamp_ms: int) -> pa.Table:
    return pa.table(
        {
            "partition": pa.array([r["partition"] for r in records], pa.int32()),
            "offset": [r["offset"] for r in records],
            "timestamp": pa.array([timestamp_ms] * len(records), pa.timestamp("ms")),
            "key": pa.array([r["key"].encode() for r in records], pa.binary()),
            "value": pa.array([r["value"].encode() for r in records], pa.binary()),
            "headers": [[] for _ in records],
        },
        schema=ARROW_SCHEMA,
    )


class Loaded(OracleServer):
    def __init__(self, server: ServerProcess, tables: dict[str, pa.Table], mid: str) -> None:
        super().__init__(server, tables)
        self.mid = mid  # an ISO instant after the first batch of orders and before the second


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    server = ServerProcess(tmp_path_factory.mktemp("sql") / "data").start()
    try:
        with httpx.Client(base_url=server.http_url, timeout=30) as client:
            for name, partitions in (("orders", 3), ("customers", 1)):
                created = client.post(
                    f"{API}/topics", json={"name": name, "partitions": partitions}
                )
                assert created.status_code == 201, created.text
            first = produce(client, "orders", [order(i) for i in range(30)])
            time.sleep(0.05)
            mid_ms = int(time.time() * 1000)
            time.sleep(0.05)
            second = produce(client, "orders", [order(i) for i in range(30, 60)])
            customers = produce(
                client,
                "customers",
                [{"key": f"c{i}", "value": json.dumps({"name": f"n{i}"})} for i in range(4)],
            )
        tables = {
            "orders": pa.concat_tables([arrow_of(first, mid_ms - 1), arrow_of(second, mid_ms)]),
            "customers": arrow_of(customers, mid_ms),
        }
        mid = datetime.fromtimestamp(mid_ms / 1000, UTC).isoformat(timespec="milliseconds")
        loaded = Loaded(server, tables, mid)
        yield loaded
        loaded.client.close()
    finally:
        server.kill()


DIFFERENTIAL = [
    "SELECT COUNT(*) AS n FROM orders",
    "SELECT json_extract_string(value, '$.status') AS status, COUNT(*) AS n, "
    "SUM(CAST(json_extract_string(value, '$.amount') AS INT)) AS amount "
    "FROM orders GROUP BY 1 ORDER BY 1",
    "SELECT partition, \"offset\", value FROM orders WHERE key = 'c3' ORDER BY 1, 2",
    "SELECT COUNT(*), MIN(CAST(json_extract_string(value, '$.id') AS INT)) FROM orders "
    "WHERE timestamp < '{mid}'",
    "SELECT COUNT(*), MIN(CAST(json_extract_string(value, '$.id') AS INT)) FROM orders "
    "WHERE timestamp >= TIMESTAMP '{mid}'",
    "SELECT key, json_extract_string(value, '$.id') AS id FROM orders "
    "ORDER BY CAST(id AS INT) DESC LIMIT 5",
    "SELECT json_extract_string(c.value, '$.name') AS name, COUNT(*) AS n "
    "FROM orders o JOIN customers c ON o.key = c.key GROUP BY 1 ORDER BY 1",
    "SELECT COUNT(*) FROM orders a JOIN orders b ON a.key = b.key AND a.partition <> b.partition",
    'SELECT "offset", key FROM orders WHERE partition = 2 AND "offset" BETWEEN 3 AND 8 ORDER BY 1',
    "SELECT DISTINCT key FROM orders ORDER BY key",
    "SELECT o.key, c.key FROM orders o LEFT JOIN customers c ON o.key = c.key "
    "WHERE o.key IN ('c1', 'c4') AND o.partition = 0 ORDER BY o.\"offset\"",
]


@pytest.mark.parametrize("statement", DIFFERENTIAL)
def test_sql_answers_match_duckdb_over_the_same_rows(loaded: Loaded, statement: str) -> None:
    statement = statement.replace("{mid}", loaded.mid)
    response = loaded.sql(statement)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"] == loaded.oracle(statement)
    assert body["row_count"] == len(body["rows"]) and body["truncated"] is False


def test_the_response_has_typed_columns_and_timing(loaded: Loaded) -> None:
    body = loaded.sql(
        'SELECT partition, "offset", timestamp, key, value_bytes FROM customers'
    ).json()
    assert body["columns"] == [
        {"name": "partition", "type": "INTEGER"},
        {"name": "offset", "type": "BIGINT"},
        {"name": "timestamp", "type": "TIMESTAMP"},
        {"name": "key", "type": "VARCHAR"},
        {"name": "value_bytes", "type": "BLOB"},
    ]
    assert body["row_count"] == 4 and body["elapsed_ms"] >= 0
    first = body["rows"][0]
    assert first[3] == "c0" and first[2].endswith("Z")
    assert json.loads(base64.b64decode(first[4])) == {"name": "n0"}


def test_show_describe_and_explain(loaded: Loaded) -> None:
    shown = loaded.sql("SHOW TOPICS").json()
    assert shown["rows"] == [["customers", 1], ["orders", 3]]
    described = loaded.sql("DESCRIBE orders").json()
    names = [c["name"] for c in described["columns"]]
    counts = [dict(zip(names, row, strict=True))["record_count"] for row in described["rows"]]
    assert counts == [20, 20, 20]
    explained = loaded.sql("EXPLAIN SELECT * FROM orders WHERE partition = 1").json()
    assert [row[1:] for row in explained["rows"][:3]] == [
        ["Project", "*"],
        ["  Filter", "partition = 1"],
        ["    Scan", "orders: partitions [1]"],
    ]


@pytest.mark.parametrize(
    ("statement", "reason", "words", "position"),
    [
        ("SELECT key\nFROM orders WHERE WHERE", "INVALID_SQL", [], (2, 19)),
        ("SELECT * FROM ordrs", "INVALID_SQL", ["Unknown topic", "Did you mean 'orders'"], None),
        ("SELECT * FROM read_csv('/etc/passwd')", "INVALID_SQL", ["not allowed"], None),
        ("SELECT read_text('/etc/passwd')", "INVALID_SQL", ["not allowed"], None),
        ("DROP STREAM orders", "INVALID_SQL", ["Stream 'orders' does not exist"], None),
        ("SELECT CAST(value AS INTEGER) FROM orders", "QUERY_FAILED", ["Conversion"], None),
    ],
)
def test_bad_sql_is_a_400_with_message_and_position(
    loaded: Loaded, statement: str, reason: str, words: list[str], position
) -> None:
    response = loaded.sql(statement)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["reason"] == reason
    for word in words:
        assert word in error["message"]
    if position is not None:
        assert (error["line"], error["column"]) == position


def streamctl(loaded: Loaded, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STREAMCTL, "sql", "--http", loaded.server.http_url, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_streamctl_sql_prints_json_csv_and_a_table(loaded: Loaded) -> None:
    statement = "SELECT key, COUNT(*) AS n FROM orders GROUP BY key ORDER BY key LIMIT 2"
    as_json = streamctl(loaded, statement, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["rows"] == [["c0", 12], ["c1", 12]]
    as_csv = streamctl(loaded, statement, "--format", "csv")
    assert as_csv.stdout.splitlines() == ["key,n", "c0,12", "c1,12"]
    as_table = streamctl(loaded, statement)
    assert as_table.returncode == 0 and "c1" in as_table.stdout and "2 rows" in as_table.stdout


def test_streamctl_sql_fails_with_the_position(loaded: Loaded) -> None:
    result = streamctl(loaded, "SELECT FROM WHERE")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "(line 1, column" in result.stderr


def test_streamctl_sql_without_a_server_exits_3() -> None:
    result = subprocess.run(
        [*STREAMCTL, "sql", "--http", f"http://127.0.0.1:{free_port()}", "SHOW TOPICS"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3 and "cannot reach" in result.stderr


def test_statements_that_do_not_parse_stay_out_of_the_server_log(loaded: Loaded) -> None:
    """A client's broken SQL is answered to that client, not copied into the operator's log."""
    for statement in ("DROP ] marker-7f3a", "CREATE marker-7f3a", "SET marker-7f3a = 1"):
        assert loaded.sql(statement).status_code == 400
    assert loaded.sql("SELECT 1").status_code == 200
    assert "marker-7f3a" not in loaded.server.output()
