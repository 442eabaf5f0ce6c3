"""DuckDB over a scan answers like DuckDB over the same rows, locked down and within limits."""

from __future__ import annotations

import asyncio
import threading
import time

import pyarrow as pa
import pytest
from streamhouse.broker.records import ARROW_SCHEMA
from streamhouse.engine.duckdb_adapter import (
    DuckDBSession,
    DuckDBSettings,
    QueryCancelledError,
    QueryError,
    QueryMemoryError,
    QueryTimeoutError,
)
from streamhouse.engine.scan import ScanSpec, open_scan

QUERIES = [
    "SELECT count(*) FROM events",
    'SELECT partition, count(*), min("offset"), max("offset") FROM events GROUP BY 1 ORDER BY 1',
    "SELECT key, count(*) AS n FROM events GROUP BY key ORDER BY key NULLS FIRST",
    "SELECT count(*) FROM events WHERE value IS NULL AND value_bytes IS NOT NULL",
    "SELECT json_extract(value, '$.b')::INT AS b, count(*) FROM events "
    "WHERE value IS NOT NULL GROUP BY 1 ORDER BY 1",
    'SELECT sum(len(headers)), max("timestamp") FROM events',
]


def run(data, sql: str, settings: DuckDBSettings | None = None):
    with DuckDBSession(settings) as session:
        session.register_topic("events", data)
        return session.execute(sql)


@pytest.mark.parametrize("sql", QUERIES)
async def test_scan_answers_like_duckdb_over_the_same_rows(produced, sql):
    scan = await open_scan(produced.manager, ScanSpec("events"))
    over_scan = await asyncio.to_thread(run, scan.reader(), sql)
    direct = run(produced.expected, sql)
    assert over_scan.table.num_rows > 0
    assert over_scan.table.equals(direct.table)
    assert not over_scan.truncated


async def test_text_columns_are_null_where_not_utf8_with_bytes_kept(produced):
    scan = await open_scan(produced.manager, ScanSpec("events", partitions=frozenset({0})))
    sql = 'SELECT value, value_bytes FROM events WHERE "offset" IN (0, 19) ORDER BY "offset"'
    rows = (await asyncio.to_thread(run, scan.reader(), sql)).table.to_pylist()
    assert rows[0] == {"value": '{"p": 0, "b": 0, "i": 0}', "value_bytes": rows[0]["value_bytes"]}
    assert rows[1] == {"value": None, "value_bytes": b"\xff\xfe not utf-8"}


REFUSED = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "COPY (SELECT 1) TO '/tmp/streamhouse-copy.csv'",
    "ATTACH '/tmp/streamhouse-attach.db'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "EXPORT DATABASE '/tmp/streamhouse-export'",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_files_network_and_extensions_are_refused(sql):
    with DuckDBSession() as session, pytest.raises(QueryError):
        session.execute(sql)


def test_python_variables_are_not_reachable_by_name():
    secret_rows = pa.table({"password": ["hunter2"]})  # noqa: F841 - what a replacement scan finds
    with DuckDBSession() as session, pytest.raises(QueryError, match="secret_rows"):
        session.execute("SELECT * FROM secret_rows")


def test_timeout_interrupts_a_long_query():
    settings = DuckDBSettings(timeout_s=0.3)
    started = time.monotonic()
    with DuckDBSession(settings) as session, pytest.raises(QueryTimeoutError):
        session.execute("SELECT count(*) FROM range(100000000) a, range(100000000) b")
    assert time.monotonic() - started < 10


def test_cancel_from_another_thread_stops_the_query():
    with DuckDBSession() as session:
        timer = threading.Timer(0.3, session.cancel)
        timer.start()
        with pytest.raises(QueryCancelledError):
            session.execute("SELECT count(*) FROM range(100000000) a, range(100000000) b")


def test_row_limit_truncates_and_says_so():
    settings = DuckDBSettings(row_limit=5, rows_per_batch=2)
    with DuckDBSession(settings) as session:
        over = session.execute("SELECT * FROM range(100) t(i)")
        exact = session.execute("SELECT * FROM range(5) t(i)")
    assert over.table.column("i").to_pylist() == [0, 1, 2, 3, 4]
    assert over.truncated
    assert exact.table.num_rows == 5
    assert not exact.truncated


def test_sql_errors_surface_with_duckdb_message():
    with DuckDBSession() as session, pytest.raises(QueryError, match="nope"):
        session.execute("SELECT * FROM nope")


def test_a_stream_has_no_row_limit_and_keeps_order():
    settings = DuckDBSettings(row_limit=5, stream_rows_per_batch=1000)
    with DuckDBSession(settings) as session, session.stream("SELECT * FROM range(25000)") as result:
        batches = []
        while (batch := result.next_batch()) is not None:
            batches.append(batch)
    assert len(batches) > 1
    assert pa.Table.from_batches(batches).column("range").to_pylist() == list(range(25000))


def test_a_stream_past_its_timeout_raises_from_the_next_batch():
    settings = DuckDBSettings(timeout_s=0.5, stream_rows_per_batch=1000)
    sql = "SELECT md5(n::VARCHAR) FROM range(10000000000) t(n)"
    with (
        DuckDBSession(settings) as session,
        session.stream(sql) as result,
        pytest.raises(QueryTimeoutError, match=r"timed out after 0\.5 s"),
    ):
        while result.next_batch() is not None:
            pass


def test_a_cancelled_stream_raises_cancelled():
    with DuckDBSession() as session, session.stream("SELECT * FROM range(1000000)") as result:
        assert result.next_batch() is not None
        session.cancel()
        with pytest.raises(QueryCancelledError):
            result.next_batch()


def test_out_of_memory_is_a_memory_error_naming_the_budget():
    settings = DuckDBSettings(memory_limit_bytes=64 * 2**20)
    with DuckDBSession(settings) as session, pytest.raises(QueryMemoryError) as caught:
        session.execute("SELECT list(range) FROM range(50000000)")
    assert "memory budget of 64 MiB" in str(caught.value)
    with DuckDBSession(settings) as session:
        assert session.execute("SELECT 1").table.num_rows == 1


def test_the_budget_is_split_between_duckdb_and_the_scans():
    settings = DuckDBSettings(memory_limit_bytes=400 * 2**20)
    assert settings.duckdb_memory_bytes + settings.scan_bytes_in_flight == 400 * 2**20
    with DuckDBSession(settings) as session:
        table = session.execute("SELECT current_setting('memory_limit') AS m").table
    assert table.column("m").to_pylist() == ["300.0 MiB"]


@pytest.mark.parametrize("budget", [1, 50_000])
async def test_a_scan_under_a_byte_budget_reads_every_row_in_order(produced, budget):
    scan = await open_scan(produced.manager, ScanSpec("events"), max_bytes_in_flight=budget)
    over_scan = await asyncio.to_thread(run, scan.reader(), "SELECT * FROM events")
    assert over_scan.table.equals(run(produced.expected, "SELECT * FROM events").table)


def _records(values: list[bytes]) -> pa.Table:
    return pa.table(
        {
            "partition": pa.array([0] * len(values), pa.int32()),
            "offset": pa.array(range(len(values)), pa.int64()),
            "timestamp": pa.array([0] * len(values), pa.timestamp("ms")),
            "key": pa.array([None] * len(values), pa.binary()),
            "value": pa.array(values, pa.binary()),
            "headers": [[] for _ in values],
        },
        schema=ARROW_SCHEMA,
    )


def test_queries_running_at_once_see_only_what_they_registered():
    """Sessions share one database: the names they register and their views stay their own,
    and cancelling one query leaves the other running."""
    with DuckDBSession() as first, DuckDBSession() as second:
        first.register_topic("t", _records([b"a", b"b"]))
        second.register_topic("t", _records([b"c"]))
        assert first.execute("SELECT string_agg(value, '') FROM t").table.to_pylist() == [
            {"string_agg(\"value\", '')": "ab"}
        ]
        assert second.execute("SELECT count(*) AS n FROM t").table.to_pylist() == [{"n": 1}]
        slow = "SELECT count(*) FROM range(100000000) a, range(100000000) b"
        outcome: dict[str, object] = {}

        def run_slow() -> None:
            try:
                first.execute(slow)
            except QueryCancelledError as exc:
                outcome["first"] = exc

        thread = threading.Thread(target=run_slow)
        thread.start()
        time.sleep(0.3)
        first.cancel()
        thread.join(10)
        assert isinstance(outcome.get("first"), QueryCancelledError)
        assert second.execute("SELECT count(*) AS n FROM t").table.to_pylist() == [{"n": 1}]
