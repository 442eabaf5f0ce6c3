from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp
from streamhouse.sql import nodes
from streamhouse.sql.dialect import StreamHouse


def parse(sql: str) -> exp.Expr:
    return sqlglot.parse_one(sql, read=StreamHouse)


@pytest.mark.parametrize(
    "sql",
    [
        "SHOW TOPICS",
        "SHOW STREAMS",
        "SHOW TABLES",
        "SHOW QUERIES",
        "DESCRIBE orders",
        "DESCRIBE orders EXTENDED",
        'EXPLAIN SELECT COUNT(*) FROM orders WHERE "partition" = 1',
        "DROP STREAM s",
        "DROP TABLE IF EXISTS t",
        "CREATE STREAM s (k TEXT KEY, ts BIGINT, amount DOUBLE) WITH (kafka_topic='orders', "
        "value_format='JSON', key_format='KAFKA', timestamp='ts', partitions=6)",
        "CREATE TABLE t (id TEXT PRIMARY KEY, n INT) WITH (kafka_topic='t')",
        "CREATE OR REPLACE STREAM IF NOT EXISTS s WITH (kafka_topic='t', value_format='AVRO')",
        "SELECT * FROM t AS OF TIMESTAMP '2026-01-01T00:00:00Z'",
        "SELECT * FROM t AS OF OFFSET 42 AS a JOIN u AS OF OFFSET 7 AS b ON a.k = b.k",
        "SELECT value -> '$.a', value ->> '$.b' FROM t",
    ],
)
def test_statements_round_trip_through_the_dialect(sql: str) -> None:
    assert parse(sql).sql(StreamHouse) == sql


def test_show_kinds_are_case_insensitive() -> None:
    assert parse("show topics").sql(StreamHouse) == "SHOW TOPICS"


def test_describe_and_explain_get_their_own_nodes() -> None:
    describe = parse("DESCRIBE t EXTENDED")
    assert isinstance(describe, nodes.DescribeSource) and describe.args["extended"]
    explain = parse("EXPLAIN SELECT a FROM t")
    assert isinstance(explain, nodes.Explain) and isinstance(explain.this, exp.Select)


def test_explain_stays_usable_as_a_column_name() -> None:
    assert parse("SELECT explain FROM t").selects[0].name == "explain"


def test_create_stream_columns_keep_types_and_key_modifiers() -> None:
    create = parse(
        "CREATE STREAM s (k STRING KEY, a ARRAY<INT>, m MAP<STRING, INT>, st STRUCT<x INT>,"
        " d DECIMAL(10,2), timestamp BIGINT) WITH (KAFKA_TOPIC='t')"
    )
    assert isinstance(create, nodes.CreateSource)
    cols = [(c.name, c.args["kind"].sql("duckdb"), c.args.get("key")) for c in create.expressions]
    assert cols == [
        ("k", "TEXT", "KEY"),
        ("a", "INT[]", None),
        ("m", "MAP(TEXT, INT)", None),
        ("st", "STRUCT(x INT)", None),
        ("d", "DECIMAL(10, 2)", None),
        ("timestamp", "BIGINT", None),
    ]
    # Property names are case-insensitive in ksqlDB: normalised to lower case.
    assert [p.name for p in create.args["properties"]] == ["kafka_topic"]


def test_as_of_is_accepted_before_or_after_the_alias() -> None:
    before = parse("SELECT * FROM t AS OF OFFSET 5 x")
    after = parse("SELECT * FROM t AS x AS OF OFFSET 5")
    for tree in (before, after):
        table = tree.find(exp.Table)
        assert table.alias == "x"
        assert table.args["version"].name == "OFFSET"
        assert table.args["version"].expression.this == "5"


def test_table_alias_named_of_is_not_confused_with_as_of() -> None:
    assert parse("SELECT * FROM t AS q").find(exp.Table).alias == "q"


def test_extractjsonfield_becomes_duckdb_json_extract_string() -> None:
    tree = parse("SELECT EXTRACTJSONFIELD(value, '$.a.b') FROM t")
    assert isinstance(tree.selects[0], exp.JSONExtractScalar)
    assert tree.sql("duckdb") == "SELECT value ->> '$.a.b' FROM t"


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE STREAM s (a INT) AS SELECT 1",
        "CREATE STREAM s (a) WITH (kafka_topic='t')",
        "CREATE STREAM s (a INT) WITH (kafka_topic=)",
        "SELECT * FROM t AS OF VERSION 3",
    ],
)
def test_malformed_ksql_is_a_parse_error(sql: str) -> None:
    with pytest.raises(sqlglot.errors.ParseError):
        parse(sql)
