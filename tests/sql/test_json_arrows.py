"""`->` and `->>` inside function calls mean what DuckDB makes of them: JSON, or a lambda."""

from __future__ import annotations

import duckdb
import pytest
from streamhouse.sql import parse_statement, to_duckdb

DOC = '{"tags": ["a", "b"], "kind": "buy", "meta": {"v": 3}}'


def run(select: str) -> tuple:
    sql = to_duckdb(parse_statement(f"SELECT {select} FROM t"), ["r"])
    con = duckdb.connect()
    con.execute(f"CREATE TABLE r AS SELECT '{DOC}' AS value")
    return con.execute(sql).fetchone()


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ("json_array_length(value->'tags')", (2,)),
        ("upper(value->>'kind')", ("BUY",)),
        ("CAST(value->'meta'->>'v' AS INT) + 1", (4,)),
        ("coalesce(value->>'missing', value->>'$.kind')", ("buy",)),
        ("length(value->'tags'->>1)", (1,)),
        ("list_transform([1, 2], x -> x + 1)", ([2, 3],)),
        ("list_filter(['a', 'bb'], s -> length(s) > 1)", (["bb"],)),
        ("list_transform(['a'], x -> 'p')", (["p"],)),
    ],
)
def test_arrows_in_calls_run_as_in_duckdb(select: str, expected: tuple) -> None:
    assert run(select) == expected
