from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from streamhouse.sql.statements import parse_statement
from streamhouse.sql.transpile import to_duckdb


def topic(rows: list[tuple[int, int, int, str, str]]) -> pa.Table:
    partition, offset, ts, key, value = zip(*rows, strict=True)
    return pa.table(
        {
            "partition": pa.array(partition, pa.int32()),
            "offset": pa.array(offset, pa.int64()),
            "timestamp": pa.array(ts, pa.timestamp("ms", tz="UTC")),
            "key": pa.array(key, pa.string()),
            "value": pa.array(value, pa.string()),
        }
    )


ORDERS = topic(
    [
        (0, 0, 1000, "a", '{"amount": 5, "item": {"sku": "x"}}'),
        (0, 1, 2000, "b", '{"amount": 7, "item": {"sku": "y"}}'),
        (1, 0, 3000, "a", '{"amount": 11, "item": {"sku": "x"}}'),
        (1, 1, 4000, "c", '{"amount": 2, "item": {"sku": "z"}}'),
    ]
)
USERS = topic([(0, 0, 500, "a", '{"name": "ann"}'), (0, 1, 600, "b", '{"name": "bob"}')])


def run(sql: str, relations: dict[str, pa.Table]) -> list[tuple]:
    """Transpile with reference i read from relation `rel_i`, then run in a fresh DuckDB."""
    statement = parse_statement(sql)
    names = [f"rel_{i}" for i in range(len(relations))]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in zip(names, relations.values(), strict=True):
        con.register(name, table)
    return con.sql(to_duckdb(statement, names)).fetchall()


def test_table_references_become_relations_aliased_by_their_query_name() -> None:
    statement = parse_statement("SELECT orders.key FROM orders AS OF OFFSET 3")
    assert to_duckdb(statement, ["scan_0"]) == 'SELECT orders.key FROM "scan_0" AS orders'


def test_the_statement_ast_is_left_unchanged() -> None:
    statement = parse_statement("SELECT * FROM orders AS OF OFFSET 3")
    to_duckdb(statement, ["scan_0"])
    assert statement.sql == "SELECT * FROM orders AS OF OFFSET 3"


def test_missing_relation_is_an_error() -> None:
    with pytest.raises(ValueError, match="reference 1"):
        to_duckdb(parse_statement("SELECT * FROM a JOIN b ON a.key = b.key"), ["r0"])


def test_where_on_record_columns_runs_in_duckdb() -> None:
    rows = run(
        "SELECT partition, offset, key FROM orders WHERE timestamp >= '1970-01-01T00:00:02Z' "
        "AND partition IN (0, 1) AND offset < 1 ORDER BY partition",
        {"orders": ORDERS},
    )
    assert rows == [(1, 0, "a")]


def test_json_functions_and_extractjsonfield() -> None:
    rows = run(
        "SELECT EXTRACTJSONFIELD(value, '$.item.sku') AS sku, SUM((value->>'$.amount')::INT) "
        "FROM orders GROUP BY sku ORDER BY sku",
        {"orders": ORDERS},
    )
    assert rows == [("x", 16), ("y", 7), ("z", 2)]
    assert run(
        "SELECT value->'$.item' FROM orders WHERE offset = 1 AND partition = 1", {"orders": ORDERS}
    ) == [('{"sku":"z"}',)]


def test_join_with_as_of_and_aliases() -> None:
    rows = run(
        "SELECT o.key, u.value->>'$.name' AS name, COUNT(*) FROM orders AS OF OFFSET 5 o "
        "JOIN users AS u ON o.key = u.key GROUP BY ALL ORDER BY o.key",
        {"orders": ORDERS, "users": USERS},
    )
    assert rows == [("a", "ann", 2), ("b", "bob", 1)]


def test_cte_subquery_and_self_join_each_get_their_relation() -> None:
    sql = (
        "WITH big AS (SELECT key FROM orders WHERE (value->>'$.amount')::INT > 6) "
        "SELECT DISTINCT orders.key FROM orders JOIN big ON orders.key = big.key "
        "WHERE orders.key IN (SELECT key FROM orders WHERE partition = 0) ORDER BY 1"
    )
    # Three references to the same topic: each one is renamed.
    rows = run(sql, {"a": ORDERS, "b": ORDERS, "c": ORDERS})
    assert rows == [("a",), ("b",)]


def test_quoted_topic_names_survive() -> None:
    assert run('SELECT COUNT(*) FROM "orders-v1"', {"orders-v1": ORDERS}) == [(4,)]
