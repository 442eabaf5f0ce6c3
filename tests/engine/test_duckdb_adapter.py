"""DuckDB over a scan answers like DuckDB over the same rows, locked down and within limits."""

from __future__ import annotations

import asyncio
import threading
import time

import pyarrow as pa
import pytest
from streamhouse.engine.duckdb_adapter import (
    DuckDBSession,
    DuckDBSettings,
    QueryCancelledError,
    QueryError,
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
