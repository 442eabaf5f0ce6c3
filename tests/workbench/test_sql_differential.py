"""The differential suite: every query through a real server and through DuckDB directly.

Generated topics are produced over REST in several rounds more than a segment's age apart, so
each partition holds several committed segments (read from the object store, through their
columnar companions when written) and an in-memory tail. Records carry explicit timestamps,
some older than the first record of their batch (Kafka allows negative deltas), null keys,
headers and non-UTF-8 bytes. The oracle is DuckDB over an Arrow table built from the produce
responses (the partition and offset each record was given), never from what the server reads
back. Each case is a query, or a (query, oracle query) pair where StreamHouse syntax (AS OF,
epoch-ms comparisons, EXTRACTJSONFIELD) has a plain DuckDB equivalent.
"""

from __future__ import annotations

import base64
import json
import random
import time
from dataclasses import dataclass

import httpx
import pyarrow as pa
import pytest
from streamhouse.broker.records import ARROW_SCHEMA

from ..conftest import ServerProcess
from .sql_oracle import OracleServer

API = "/api/v1"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000
KINDS = ["click", "view", "buy", "refund"]
ROUNDS = 4
EVENTS_PER_ROUND = 150


@dataclass(frozen=True)
class Placed:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def produce(client: httpx.Client, topic: str, records: list[dict]) -> list[Placed]:
    """Produces records given as bytes (sent base64); returns where each landed."""
    body = {
        "encoding": "base64",
        "records": [
            {
                "key": _b64(r["key"]),
                "value": _b64(r["value"]),
                "partition": r["partition"],
                "timestamp_ms": r["timestamp_ms"],
                "headers": {k: _b64(v) for k, v in r.get("headers", ())},
            }
            for r in records
        ],
    }
    response = client.post(f"{API}/topics/{topic}/records", json=body)
    assert response.status_code == 200, response.text
    base = {p["partition"]: p["base_offset"] for p in response.json()["partitions"]}
    seen: dict[int, int] = {}
    placed = []
    for r in records:
        p = r["partition"]
        offset = base[p] + seen.get(p, 0)
        seen[p] = seen.get(p, 0) + 1
        headers = tuple(r.get("headers", ()))
        placed.append(Placed(p, offset, r["timestamp_ms"], r["key"], r["value"], headers))
    return placed


def arrow_of(placed: list[Placed]) -> pa.Table:
    return pa.table(
        {
            "partition": pa.array([r.partition for r in placed], pa.int32()),
            "offset": pa.array([r.offset for r in placed], pa.int64()),
            "timestamp": pa.array([r.timestamp_ms for r in placed], pa.timestamp("ms")),
            "key": pa.array([r.key for r in placed], pa.binary()),
            "value": pa.array([r.value for r in placed], pa.binary()),
            "headers": [[{"key": k, "value": v} for k, v in r.headers] for r in placed],
        },
        schema=ARROW_SCHEMA,
    )


def event(i: int, rng: random.Random) -> dict:
    """Event i: one a minute from T0, every 7th half an hour late; amounts are exact binary
    fractions so sums do not depend on the order DuckDB adds them in."""
    late = 30 * MINUTE if i % 7 == 3 else 0
    value = {
        "id": i,
        "user": f"u{rng.randrange(12)}",
        "kind": KINDS[rng.randrange(len(KINDS))],
        "amount": rng.randrange(400) / 4,
        "tags": [f"t{j}" for j in range(i % 3)],
        "meta": {"v": i % 5, "ok": i % 2 == 0},
    }
    key = None if i % 11 == 0 else f"u{i % 9}".encode()
    headers = [("source", b"web" if i % 2 else b"app")] if i % 4 else []
    return {
        "key": key,
        "value": json.dumps(value).encode(),
        "partition": rng.randrange(4),
        "timestamp_ms": T0 + i * MINUTE - late,
        "headers": headers,
    }


def raw_record(i: int) -> dict:
    """Bytes that are not all UTF-8: a query must see NULL text and the untouched bytes."""
    value = bytes([0xFF, 0xFE, i % 256]) if i % 3 == 0 else f"text-{i}".encode()
    key = None if i % 4 == 0 else bytes([0x80 + i % 5]) if i % 5 == 0 else f"r{i % 3}".encode()
    return {
        "key": key,
        "value": None if i % 10 == 9 else value,
        "partition": i % 2,
        "timestamp_ms": T0 + i * 1000,
        "headers": [("h", None), ("n", str(i).encode())] if i % 2 else [],
    }


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    server = ServerProcess(tmp_path_factory.mktemp("differential") / "data").start()
    rng = random.Random(20261123)
    try:
        with httpx.Client(base_url=server.http_url, timeout=30) as client:
            for name, partitions in (("events", 4), ("users", 1), ("raw", 2)):
                created = client.post(
                    f"{API}/topics", json={"name": name, "partitions": partitions}
                )
                assert created.status_code == 201, created.text
            users = produce(
                client,
                "users",
                [
                    {
                        "key": f"u{i}".encode(),
                        "value": json.dumps({"name": f"user {i}", "tier": i % 3}).encode(),
                        "partition": 0,
                        "timestamp_ms": T0,
                    }
                    for i in range(7)
                ],
            )
            raw = produce(client, "raw", [raw_record(i) for i in range(40)])
            events: list[Placed] = []
            for round_ in range(ROUNDS):
                if round_:
                    time.sleep(1.3)  # past segment.ms: the previous round is sealed
                first = round_ * EVENTS_PER_ROUND
                ids = range(first, first + EVENTS_PER_ROUND)
                records = [event(i, rng) for i in ids]
                for chunk in range(0, len(records), 50):
                    events += produce(client, "events", records[chunk : chunk + 50])
        tables = {"events": arrow_of(events), "users": arrow_of(users), "raw": arrow_of(raw)}
        loaded = OracleServer(server, tables)
        yield loaded
        loaded.client.close()
    finally:
        server.kill()


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


H1, H3 = iso(T0 + 60 * MINUTE), iso(T0 + 180 * MINUTE)
J = "json_extract_string(value, '$.{}')"
AMOUNT = "CAST(json_extract(value, '$.amount') AS DOUBLE)"

# A query, or (StreamHouse query, the plain DuckDB query with the same meaning).
CASES: list[str | tuple[str, str]] = [
    # counting and grouping (a COUNT(*) restricted by partition or offset only is answered
    # from offsets, reading nothing)
    "SELECT COUNT(*) AS n FROM events",
    'SELECT COUNT(*) FROM events WHERE partition IN (1, 3) AND "offset" >= 17',
    'SELECT count(*) FROM events WHERE "offset" > 100000 OR FALSE',
    "SELECT COUNT(*) FROM events WHERE partition = 9",
    (
        "SELECT COUNT(*) FROM events AS OF OFFSET 50",
        'SELECT COUNT(*) FROM events WHERE "offset" <= 50',
    ),
    'SELECT partition, COUNT(*), MIN("offset"), MAX("offset") FROM events GROUP BY 1 ORDER BY 1',
    "SELECT key, COUNT(*) AS n FROM events GROUP BY key ORDER BY key NULLS FIRST",
    f"SELECT {J.format('kind')} AS kind, COUNT(*), SUM({AMOUNT}), AVG({AMOUNT}) "
    "FROM events GROUP BY kind ORDER BY kind",
    f"SELECT {J.format('user')} AS u, SUM({AMOUNT}) AS total FROM events "
    "GROUP BY u HAVING COUNT(*) > 45 ORDER BY total DESC, u",
    f"SELECT DISTINCT {J.format('kind')} AS kind FROM events ORDER BY kind",
    "SELECT COUNT(DISTINCT key), COUNT(key), COUNT(*) - COUNT(key) AS null_keys FROM events",
    f"SELECT {J.format('kind')} AS kind, {J.format('user')} AS u, COUNT(*) FROM events "
    "GROUP BY ROLLUP (kind, u) ORDER BY kind NULLS FIRST, u NULLS FIRST",
    f"SELECT MEDIAN({AMOUNT}), QUANTILE_CONT({AMOUNT}, 0.9), MIN({AMOUNT}), MAX({AMOUNT}) "
    "FROM events",
    f'SELECT key, ARG_MAX({J.format("id")}, "offset") AS last_id FROM events '
    "WHERE key IS NOT NULL GROUP BY ALL ORDER BY ALL",
    f"SELECT key, STRING_AGG({J.format('kind')}, ',' ORDER BY partition, \"offset\") "
    "FROM events WHERE key IN ('u1', 'u2') GROUP BY key ORDER BY key",
    # ordering and paging
    'SELECT partition, "offset", timestamp FROM events ORDER BY timestamp, partition, "offset" '
    "LIMIT 10 OFFSET 5",
    f"SELECT {J.format('id')} AS id FROM events ORDER BY {AMOUNT} DESC, CAST(id AS INT) LIMIT 7",
    # pushed-down predicates: key, partition, offset, timestamp
    "SELECT partition, \"offset\", value FROM events WHERE key = 'u3' ORDER BY 1, 2",
    "SELECT COUNT(*) FROM events WHERE key IN ('u1', 'u2', 'nobody') AND partition = 1",
    'SELECT partition, "offset" FROM events WHERE key IS NULL ORDER BY 1, 2',
    "SELECT partition, COUNT(*) FROM events WHERE partition IN (0, 2) GROUP BY 1 ORDER BY 1",
    'SELECT partition, "offset" FROM events WHERE "offset" >= 40 AND "offset" < 45 ORDER BY 1, 2',
    'SELECT COUNT(*) FROM events WHERE "offset" BETWEEN 10 AND 20 AND partition = 3',
    f"SELECT COUNT(*), MIN({J.format('id')}::INT) FROM events "
    f"WHERE timestamp >= '{H1}' AND timestamp < '{H3}'",
    f"SELECT COUNT(*) FROM events WHERE timestamp BETWEEN TIMESTAMP '{H1}' AND '{H3}'",
    (
        f"SELECT COUNT(*) FROM events WHERE timestamp >= {T0 + 100 * MINUTE} "
        f"AND timestamp < {T0 + 130 * MINUTE}",
        f"SELECT COUNT(*) FROM events WHERE timestamp >= epoch_ms({T0 + 100 * MINUTE}) "
        f"AND timestamp < epoch_ms({T0 + 130 * MINUTE})",
    ),
    # the late records: older than their batch's first record, still inside a range
    f"SELECT {J.format('id')}::INT AS id FROM events WHERE timestamp < '{iso(T0 + 10 * MINUTE)}' "
    "ORDER BY id",
    f"SELECT {J.format('id')}::INT AS id FROM events "
    f"WHERE timestamp >= '{iso(T0 + 570 * MINUTE)}' AND timestamp < '{iso(T0 + 575 * MINUTE)}' "
    "ORDER BY id",
    f"SELECT COUNT(*) FROM events WHERE key = 'u4' AND timestamp < '{H3}' AND partition <> 2",
    # not pushed down, same answers
    "SELECT COUNT(*) FROM events WHERE key = 'u1' OR partition = 3",
    "SELECT COUNT(*) FROM events WHERE NOT (key = 'u1') AND partition = 0",
    "SELECT COUNT(*) FROM events WHERE key LIKE 'u%' AND key NOT IN ('u0', 'u8')",
    "SELECT COUNT(*) FROM events WHERE lower(key) = 'u5'",
    # JSON
    "SELECT json_extract(value, '$.meta.v') AS v, COUNT(*) FROM events GROUP BY v ORDER BY v",
    "SELECT value->>'kind' AS kind, COUNT(*) FROM events GROUP BY ALL ORDER BY ALL",
    "SELECT json_array_length(value->'tags') AS tags, COUNT(*) FROM events "
    "GROUP BY ALL ORDER BY ALL",
    "SELECT json_extract_string(value, '$.tags[1]') AS second, COUNT(*) FROM events "
    "GROUP BY ALL ORDER BY ALL NULLS FIRST",
    (
        "SELECT EXTRACTJSONFIELD(value, '$.user') AS u, COUNT(*) FROM events GROUP BY u ORDER BY u",
        "SELECT value->>'$.user' AS u, COUNT(*) FROM events GROUP BY u ORDER BY u",
    ),
    "SELECT COUNT(*) FROM events WHERE CAST(json_extract(value, '$.meta.ok') AS BOOLEAN)",
    # CTEs, subqueries, windows
    f"WITH spend AS (SELECT key, SUM({AMOUNT}) AS total FROM events GROUP BY key) "
    "SELECT key, total FROM spend WHERE total > (SELECT AVG(total) FROM spend) ORDER BY key",
    'SELECT partition, "offset" FROM events WHERE key IN '
    "(SELECT key FROM users WHERE json_extract(value, '$.tier')::INT = 2) ORDER BY 1, 2",
    "SELECT key FROM users u WHERE EXISTS "
    "(SELECT 1 FROM events e WHERE e.key = u.key AND e.partition = 0) ORDER BY key",
    "SELECT n, COUNT(*) FROM (SELECT key, COUNT(*) AS n FROM events GROUP BY key) "
    "GROUP BY n ORDER BY n",
    'SELECT key, "offset", ROW_NUMBER() OVER (PARTITION BY key ORDER BY partition, "offset") '
    "AS rn FROM events WHERE partition = 1 QUALIFY rn <= 2 ORDER BY key NULLS FIRST, rn",
    f'SELECT "offset", {AMOUNT} - LAG({AMOUNT}) OVER (ORDER BY "offset") AS delta '
    'FROM events WHERE partition = 2 ORDER BY "offset" LIMIT 20',
    f"SELECT {J.format('id')}::INT AS id, SUM({AMOUNT}) OVER (ORDER BY timestamp, partition, "
    '"offset" ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS moving FROM events '
    'ORDER BY timestamp, partition, "offset" LIMIT 25',
    # joins and set operations
    "SELECT json_extract_string(u.value, '$.name') AS name, COUNT(*), "
    f"SUM({AMOUNT.replace('value', 'e.value')}) "
    "FROM events e JOIN users u ON e.key = u.key GROUP BY name ORDER BY name",
    "SELECT e.key, COUNT(u.key) AS matched FROM events e LEFT JOIN users u ON e.key = u.key "
    "GROUP BY e.key ORDER BY e.key NULLS FIRST",
    "SELECT COUNT(*) FROM events a JOIN events b ON a.key = b.key "
    "AND a.partition = 0 AND b.partition = 1",
    "SELECT key FROM events WHERE partition = 0 INTERSECT SELECT key FROM users ORDER BY key",
    "SELECT key FROM users EXCEPT SELECT key FROM events WHERE partition = 3 ORDER BY key",
    "SELECT 'events' AS t, COUNT(*) FROM events UNION ALL SELECT 'users', COUNT(*) FROM users "
    "ORDER BY t",
    # time functions
    "SELECT date_trunc('hour', timestamp) AS hour, COUNT(*) FROM events "
    "GROUP BY hour ORDER BY hour",
    'SELECT epoch_ms(timestamp) AS ms, partition, "offset" FROM events '
    'ORDER BY ms DESC, partition, "offset" LIMIT 5',
    "SELECT strftime(timestamp, '%Y-%m-%d %H') AS h, COUNT(*) FROM events "
    "WHERE partition = 1 GROUP BY h ORDER BY h",
    # headers and bytes
    "SELECT len(headers) AS n, COUNT(*) FROM events GROUP BY n ORDER BY n",
    "SELECT decode(headers[1].value) AS source, COUNT(*) FROM events "
    "WHERE len(headers) > 0 GROUP BY source ORDER BY source",
    'SELECT partition, "offset", key, value, key_bytes, value_bytes, headers FROM raw '
    "ORDER BY 1, 2",
    "SELECT COUNT(value), COUNT(value_bytes), COUNT(key), COUNT(key_bytes) FROM raw",
    "SELECT octet_length(value_bytes) AS size, COUNT(*) FROM raw GROUP BY size ORDER BY size",
    # CASE and conditional aggregates
    f"SELECT CASE WHEN {AMOUNT} >= 50 THEN 'big' ELSE 'small' END AS size, "
    f"COUNT(*) FILTER (WHERE {J.format('kind')} = 'buy') AS buys, COUNT(*) "
    "FROM events GROUP BY size ORDER BY size",
    # time travel
    (
        'SELECT partition, COUNT(*), MAX("offset") FROM events AS OF OFFSET 99 '
        "GROUP BY 1 ORDER BY 1",
        'SELECT partition, COUNT(*), MAX("offset") FROM events WHERE "offset" <= 99 '
        "GROUP BY 1 ORDER BY 1",
    ),
    (
        f"SELECT COUNT(*) FROM events AS OF TIMESTAMP '{H3}'",
        f"SELECT COUNT(*) FROM events WHERE timestamp <= TIMESTAMP '{H3}'",
    ),
    (
        f"SELECT COUNT(*) FROM events AS OF TIMESTAMP {T0 + 200 * MINUTE} WHERE key = 'u2'",
        f"SELECT COUNT(*) FROM events WHERE timestamp <= epoch_ms({T0 + 200 * MINUTE}) "
        "AND key = 'u2'",
    ),
]


def _case_id(case: str | tuple[str, str]) -> str:
    text = case if isinstance(case, str) else case[0]
    return text[:60]


def test_the_suite_is_big_enough() -> None:
    assert len(CASES) >= 50


def test_the_topics_hold_committed_segments_and_a_tail(loaded: OracleServer) -> None:
    """The suite means something only if queries cross segments and the in-memory tail."""
    body = loaded.sql("DESCRIBE events").json()
    names = [c["name"] for c in body["columns"]]
    rows = [dict(zip(names, row, strict=True)) for row in body["rows"]]
    assert sum(r["segment_count"] for r in rows) >= 2 * len(rows)
    assert sum(r["record_count"] for r in rows) == ROUNDS * EVENTS_PER_ROUND


@pytest.mark.parametrize(
    ("statement", "reads"),
    [
        ("SELECT COUNT(*) FROM events", False),
        ('SELECT COUNT(*) FROM events WHERE partition = 2 AND "offset" BETWEEN 3 AND 90', False),
        ("SELECT COUNT(*) FROM events WHERE key = 'u1'", True),
        ("SELECT COUNT(key) FROM events", True),
    ],
)
def test_counts_by_offset_read_no_segment(
    loaded: OracleServer, statement: str, reads: bool
) -> None:
    body = loaded.sql(statement).json()
    assert body["rows"] == loaded.oracle(statement)
    assert (body["stats"]["segments_read"] > 0) is reads
    assert body["stats"]["segments_skipped"] > 0 or reads


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_streamhouse_answers_as_duckdb_over_the_same_rows(loaded: OracleServer, case) -> None:
    statement, oracle = (case, case) if isinstance(case, str) else case
    response = loaded.sql(statement)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"] == loaded.oracle(oracle)
    assert body["row_count"] == len(body["rows"]) and body["truncated"] is False
