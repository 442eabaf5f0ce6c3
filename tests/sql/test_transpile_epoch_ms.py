"""Epoch-millisecond comparisons with record times, as Kafka and ksqlDB users write them."""

from __future__ import annotations

import duckdb
import pytest
from streamhouse.sql import parse_statement, to_duckdb


def run(sql: str) -> list[tuple]:
    """Runs the transpiled query over three records a second apart, from 2026-01-01."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        'CREATE TABLE r AS SELECT i AS "offset", '
        "epoch_ms(1767225600000 + i * 1000) AS timestamp FROM range(3) t(i)"
    )
    return con.sql(to_duckdb(parse_statement(sql), ["r"])).fetchall()


@pytest.mark.parametrize(
    ("where", "offsets"),
    [
        ("timestamp >= 1767225601000", [1, 2]),
        ("1767225601000 > timestamp", [0]),
        ("t.timestamp = 1767225602000", [2]),
        ("timestamp <> 1767225602000", [0, 1]),
        ("timestamp BETWEEN 1767225600000 AND 1767225601000", [0, 1]),
        ("timestamp IN (1767225600000, 1767225602000)", [0, 2]),
        ("timestamp >= '2026-01-01T00:00:01Z'", [1, 2]),
        ("timestamp < 0", []),
    ],
)
def test_integers_compared_with_a_record_time_are_epoch_ms(where: str, offsets: list[int]):
    rows = run(f'SELECT "offset" FROM t WHERE {where} ORDER BY 1')
    assert [r[0] for r in rows] == offsets


def test_other_columns_and_arithmetic_are_left_alone() -> None:
    sql = 'SELECT "offset" + 1 FROM t WHERE "offset" >= 1 AND epoch_ms(timestamp) > 5'
    transpiled = to_duckdb(parse_statement(sql), ["r"])
    assert "EPOCH_MS(1)" not in transpiled and "EPOCH_MS(5)" not in transpiled
    assert [r[0] for r in run(sql + " ORDER BY 1")] == [2, 3]


def test_the_time_columns_can_be_named_by_the_caller() -> None:
    statement = parse_statement("SELECT * FROM t WHERE event_time > 5 AND timestamp > 5")
    sql = to_duckdb(statement, ["r"], time_columns={"event_time"})
    assert "event_time > EPOCH_MS(5)" in sql and "timestamp > 5" in sql
