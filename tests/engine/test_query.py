"""The query service over a real log: results agree with DuckDB run on the same rows directly.

`events` holds the rows of tests/engine/conftest.py (committed segments and an in-memory tail,
known exactly); the oracle
registers those rows as one Arrow table in a plain session and runs the query as written, so
any difference comes from the scans, the pushdown or the transpiling in between.
"""

from __future__ import annotations

import asyncio

import pyarrow as pa
import pytest
from streamhouse.broker.log import LogManager
from streamhouse.broker.records import ARROW_SCHEMA, build_batch
from streamhouse.broker.service import BrokerService
from streamhouse.engine.duckdb_adapter import (
    DuckDBSession,
    DuckDBSettings,
    QueryError,
    QueryTimeoutError,
)
from streamhouse.engine.query import QueryService
from streamhouse.engine.query.results import from_arrow
from streamhouse.sql import SqlError

from .conftest import T0, Produced

USERS = [(b"k0", b'{"name": "zero"}'), (b"k1", b'{"name": "one"}'), (b"k2", b'{"name": "two"}')]


async def add_users(manager: LogManager) -> pa.Table:
    await manager.create_topic("users", 1)
    plog = await manager.partition("users", 0)
    keys, values = [k for k, _ in USERS], [v for _, v in USERS]
    await plog.append([build_batch(values, keys=keys, timestamps=[T0] * len(USERS))])
    return pa.table(
        {
            "partition": pa.array([0] * len(USERS), pa.int32()),
            "offset": range(len(USERS)),
            "timestamp": pa.array([T0] * len(USERS), pa.timestamp("ms")),
            "key": pa.array(keys, pa.binary()),
            "value": pa.array(values, pa.binary()),
            "headers": [[] for _ in USERS],
        },
        schema=ARROW_SCHEMA,
    )


@pytest.fixture
async def events(produced_base: Produced) -> pa.Table:
    """`events`: per partition, SEGMENTS committed one-batch segments and an in-memory tail."""
    return produced_base.expected


@pytest.fixture
async def topics(manager: LogManager, events: pa.Table) -> tuple[QueryService, dict[str, pa.Table]]:
    users = await add_users(manager)
    return QueryService(BrokerService(manager)), {"events": events, "users": users}


def oracle(sql: str, tables: dict[str, pa.Table]) -> list[list]:
    with DuckDBSession() as session:
        for name, table in tables.items():
            session.register_topic(name, table)
        result = session.execute(sql)
    return from_arrow(result.table).rows


DIFFERENTIAL = [
    "SELECT COUNT(*) AS n FROM events",
    "SELECT json_extract_string(value, '$.b') AS b, COUNT(*) AS n "
    "FROM events GROUP BY b ORDER BY b",
    'SELECT partition, "offset", value FROM events WHERE key = \'k1\' ORDER BY partition, "offset"',
    "SELECT partition, \"offset\" FROM events WHERE timestamp >= TIMESTAMP '2023-11-14 22:13:22' "
    "AND timestamp < '2023-11-14T22:13:23.005' ORDER BY 1, 2",
    'SELECT partition, "offset", timestamp FROM events ORDER BY timestamp DESC, partition LIMIT 7',
    'SELECT COUNT(*) FROM events WHERE partition = 1 AND "offset" BETWEEN 10 AND 30',
    "SELECT key, COUNT(*) FROM events WHERE key IN ('k0', 'k2') GROUP BY key ORDER BY key",
    "SELECT COUNT(*) FROM events WHERE value IS NULL OR key IS NULL",
    "SELECT a.partition, COUNT(*) FROM events a JOIN events b "
    "ON a.key = b.key AND a.partition = b.partition "
    'WHERE a."offset" < 20 AND b."offset" >= 100 GROUP BY 1 ORDER BY 1',
    "SELECT json_extract_string(u.value, '$.name') AS name, COUNT(*) AS n "
    "FROM events e JOIN users u ON e.key = u.key WHERE e.partition = 2 GROUP BY 1 ORDER BY 1",
    'SELECT COUNT(*) FROM (SELECT DISTINCT key FROM events WHERE "offset" > 50)',
    'WITH recent AS (SELECT * FROM events WHERE "offset" >= 100) '
    'SELECT partition, key, "offset", ROW_NUMBER() OVER (PARTITION BY partition, key '
    'ORDER BY "offset" DESC) AS rn FROM recent QUALIFY rn = 1 ORDER BY 1, 2',
    'SELECT key_bytes, value_bytes, headers FROM events WHERE partition = 0 AND "offset" < 4 '
    'ORDER BY "offset"',
]


@pytest.mark.parametrize("sql", DIFFERENTIAL)
async def test_query_results_match_duckdb_over_the_same_rows(topics, sql: str) -> None:
    service, tables = topics
    result = await service.execute(sql)
    assert result.rows == oracle(sql, tables)
    assert not result.truncated


async def test_timestamps_are_iso_utc_and_bytes_base64(topics) -> None:
    service, _ = topics
    result = await service.execute(
        "SELECT timestamp, key_bytes, value FROM events "
        'WHERE partition = 0 AND "offset" = 19'  # the record whose value is not UTF-8
    )
    assert result.columns == [
        {"name": "timestamp", "type": "TIMESTAMP"},
        {"name": "key_bytes", "type": "BLOB"},
        {"name": "value", "type": "VARCHAR"},
    ]
    assert result.rows == [["2023-11-14T22:13:20.019Z", "azM=", None]]


async def test_as_of_offset_shows_each_partition_up_to_that_offset(topics) -> None:
    service, _ = topics
    result = await service.execute('SELECT COUNT(*), MAX("offset") FROM events AS OF OFFSET 9')
    assert result.rows == [[30, 9]]


async def test_as_of_timestamp_includes_that_instant(topics) -> None:
    service, _ = topics
    result = await service.execute(
        "SELECT COUNT(*) FROM events AS OF TIMESTAMP '2023-11-14T22:13:20.004Z'"
    )
    assert result.rows == [[15]]  # i = 0..4 of batch 0, in each of 3 partitions


async def test_results_stop_at_the_row_limit_and_say_so(manager: LogManager, events) -> None:
    service = QueryService(BrokerService(manager), DuckDBSettings(row_limit=50))
    result = await service.execute("SELECT * FROM events")
    assert len(result.rows) == 50 and result.truncated


async def test_a_query_past_its_timeout_is_interrupted(manager: LogManager, events) -> None:
    service = QueryService(BrokerService(manager), DuckDBSettings(timeout_s=0.3))
    with pytest.raises(QueryTimeoutError):
        await asyncio.wait_for(
            service.execute(
                'SELECT SUM(a."offset" * b."offset" * c."offset" * d."offset") '
                "FROM events a, events b, events c, events d"
            ),
            timeout=20,
        )


async def test_show_topics_and_describe(topics) -> None:
    service, _ = topics
    shown = await service.execute("SHOW TOPICS")
    assert shown.rows == [["events", 3], ["users", 1]]
    described = await service.execute("DESCRIBE events")
    by_name = [c["name"] for c in described.columns]
    rows = [dict(zip(by_name, row, strict=True)) for row in described.rows]
    assert [r["partition"] for r in rows] == [0, 1, 2]
    assert all(r["record_count"] == 120 and r["next_offset"] == 120 for r in rows)
    assert all(r["segment_count"] == 5 and r["size_bytes"] > 0 for r in rows)


async def test_explain_shows_the_plan_and_the_pushdown_per_reference(topics) -> None:
    service, _ = topics
    result = await service.execute(
        "EXPLAIN SELECT a.key, COUNT(*) AS n FROM events a JOIN events b ON a.key = b.key "
        "WHERE a.partition = 1 AND b.\"offset\" >= 100 AND a.key = 'k1' "
        "GROUP BY a.key ORDER BY n DESC LIMIT 3"
    )
    assert [c["name"] for c in result.columns] == ["step", "operator", "detail"]
    assert [row[0] for row in result.rows] == list(range(len(result.rows)))
    assert [row[1] for row in result.rows] == [
        "Limit",
        "  Sort",
        "    Project",
        "      Aggregate",
        "        Filter",
        "          Join",
        "            Scan",
        "            Scan",
        "DuckDB SQL",
    ]
    details = [row[2] for row in result.rows]
    assert details[6] == "events AS a: partitions [1]; keys ['k1']"
    assert details[7] == "events AS b: offsets [100, +inf)"
    assert details[3] == "group by a.key; COUNT(*)"
    assert '"__sh_scan_0" AS a' in details[-1] and '"__sh_scan_1" AS b' in details[-1]


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT * FROM evnts", ["Unknown topic", "'events'"]),
        ("DESCRIBE evnts", ["Unknown topic", "'events'"]),
        ("SELECT * FROM read_csv('/etc/passwd')", ["not allowed"]),
        ("CREATE STREAM s (a INT) WITH (kafka_topic='events')", ['"VALUE_FORMAT"']),
    ],
)
async def test_bad_statements_are_sql_errors(topics, sql: str, words: list[str]) -> None:
    service, _ = topics
    with pytest.raises(SqlError) as caught:
        await service.execute(sql)
    for word in words:
        assert word in caught.value.message


async def test_syntax_errors_point_at_line_and_column(topics) -> None:
    service, _ = topics
    with pytest.raises(SqlError) as caught:
        await service.execute("SELECT key\nFROM events WHERE WHERE")
    assert (caught.value.line, caught.value.column) == (2, 19)


async def test_a_scan_failing_under_duckdb_is_reported_as_itself(topics, manager) -> None:
    """DuckDB passes a reader's failure on as a traceback in its own error text; the query
    reports the scan's own error instead (here: a committed segment gone from the store)."""
    service, _ = topics
    plog = await manager.partition("events", 1)
    await plog.companions.drain()  # a companion written after the delete would answer
    segment = plog.segments[-1]
    for key in (segment.object_key, segment.object_key + ".parquet"):
        await manager.store.delete(key)
        manager.cache.invalidate(key)
    for run in (service.execute, _streamed(service)):
        with pytest.raises(Exception) as caught:
            await run("SELECT COUNT(value) FROM events WHERE partition = 1")
        assert not isinstance(caught.value, QueryError), caught.value
        assert "events" in str(caught.value) or "segment" in str(caught.value).lower()
        assert "Traceback" not in str(caught.value)
    assert (await service.execute("SELECT COUNT(*) FROM events WHERE partition = 0")).rows


def _streamed(service: QueryService):
    async def run(sql: str) -> list:
        stream = await service.stream(sql)
        try:
            return [batch async for batch in stream.batches()]
        finally:
            stream.close()

    return run


async def test_explain_says_when_a_count_reads_nothing(topics) -> None:
    service, _ = topics
    counted = await service.execute('EXPLAIN SELECT COUNT(*) FROM events WHERE "offset" < 50')
    assert counted.rows[-1][1:] == [
        "DuckDB SQL",
        "none: COUNT(*) is the number of offsets in the scanned ranges",
    ]
    scanned = await service.execute("EXPLAIN SELECT COUNT(key) FROM events")
    assert scanned.rows[-1][2].startswith("SELECT COUNT(key)")
