from __future__ import annotations

import pytest
from streamhouse.sql.errors import SqlError
from streamhouse.sql.statements import (
    AsOf,
    Column,
    CreateSourceStatement,
    DescribeStatement,
    DropStatement,
    ExplainStatement,
    QueryStatement,
    ShowStatement,
    parse_script,
    parse_statement,
)


@pytest.mark.parametrize("kind", ["topics", "streams", "tables", "queries"])
def test_show(kind: str) -> None:
    assert parse_statement(f"SHOW {kind.upper()};") == ShowStatement(kind)


def test_describe_with_and_without_extended() -> None:
    assert parse_statement("DESCRIBE orders") == DescribeStatement("orders", False)
    assert parse_statement("describe orders extended") == DescribeStatement("orders", True)


def test_dotted_and_quoted_topic_names_keep_their_text() -> None:
    assert parse_statement("DESCRIBE orders.v1") == DescribeStatement("orders.v1")
    assert parse_statement('DESCRIBE "my-topic"') == DescribeStatement("my-topic")


def test_explain_wraps_a_query() -> None:
    statement = parse_statement("EXPLAIN SELECT * FROM t AS OF OFFSET 3")
    assert isinstance(statement, ExplainStatement)
    assert statement.query.as_of == {0: AsOf("offset", 3)}


def test_create_stream_with_properties() -> None:
    statement = parse_statement(
        "CREATE STREAM IF NOT EXISTS clicks (user_id VARCHAR KEY, url STRING, ts BIGINT) "
        "WITH (KAFKA_TOPIC='clicks', value_format='JSON', timestamp='ts', partitions=6);"
    )
    assert statement == CreateSourceStatement(
        kind="stream",
        name="clicks",
        columns=(
            Column("user_id", "TEXT", "key"),
            Column("url", "TEXT"),
            Column("ts", "BIGINT"),
        ),
        properties={
            "kafka_topic": "clicks",
            "value_format": "JSON",
            "timestamp": "ts",
            "partitions": 6,
        },
        if_not_exists=True,
    )


def test_create_table_with_primary_key_and_no_properties() -> None:
    statement = parse_statement("CREATE TABLE users (id VARCHAR PRIMARY KEY, age INT)")
    assert statement == CreateSourceStatement(
        kind="table",
        name="users",
        columns=(Column("id", "TEXT", "primary"), Column("age", "INT")),
    )


def test_create_stream_without_columns_infers_them_later() -> None:
    statement = parse_statement("CREATE OR REPLACE STREAM s WITH (kafka_topic='t')")
    assert isinstance(statement, CreateSourceStatement)
    assert statement.columns == () and statement.or_replace


def test_drop() -> None:
    assert parse_statement("DROP STREAM s") == DropStatement("stream", "s", False)
    assert parse_statement("DROP TABLE IF EXISTS t;") == DropStatement("table", "t", True)


def test_drop_delete_topic_is_refused_with_what_to_do_instead() -> None:
    with pytest.raises(SqlError, match="DELETE TOPIC is not supported") as raised:
        parse_statement("DROP STREAM s DELETE TOPIC")
    assert raised.value.line == 1


def test_backticks_quote_identifiers_as_in_ksqldb() -> None:
    statement = parse_statement(
        "CREATE STREAM `My Stream` (`Id` STRING KEY, s STRUCT<`Inner` INT>) WITH (kafka_topic='t')"
    )
    assert statement.name == "My Stream"
    assert [c.name for c in statement.columns] == ["Id", "s"]
    assert statement.columns[1].type == 'STRUCT("Inner" INT)'


def test_query_records_as_of_per_table_reference() -> None:
    statement = parse_statement(
        "SELECT * FROM a AS OF TIMESTAMP '2026-01-01T00:00:00Z' JOIN b ON a.k = b.k "
        "JOIN c AS OF OFFSET 10 ON c.k = a.k"
    )
    assert isinstance(statement, QueryStatement)
    assert statement.as_of == {
        0: AsOf("timestamp", "2026-01-01T00:00:00Z"),
        2: AsOf("offset", 10),
    }


def test_as_of_timestamp_accepts_epoch_ms() -> None:
    statement = parse_statement("SELECT * FROM a AS OF TIMESTAMP 1767225600000")
    assert statement.as_of == {0: AsOf("timestamp", 1767225600000)}


def test_as_of_offset_must_be_a_non_negative_integer() -> None:
    with pytest.raises(SqlError, match="non-negative integer"):
        parse_statement("SELECT * FROM a AS OF OFFSET 'x'")


def test_script_splits_statements_and_skips_empty_ones() -> None:
    statements = parse_script("SHOW TOPICS;\n;\nDESCRIBE t;\nSELECT 1;")
    assert [type(s) for s in statements] == [ShowStatement, DescribeStatement, QueryStatement]


def test_parse_statement_wants_exactly_one() -> None:
    with pytest.raises(SqlError, match="one statement"):
        parse_statement("SHOW TOPICS; SHOW STREAMS")


@pytest.mark.parametrize(
    ("sql", "line", "column"),
    [
        ("SELECT * FROM t WHERE", 1, 17),
        ("SELECT a,\n  b\nFROM t\nWHERE a = = 1", 4, 11),
        ("SHOW TOPICS;\nSELECT * FROM", 2, 10),
        ("CREATE STREAM s (a) WITH (kafka_topic='t')", 1, 19),
    ],
)
def test_syntax_errors_point_at_the_offending_token(sql: str, line: int, column: int) -> None:
    with pytest.raises(SqlError) as caught:
        parse_script(sql)
    assert (caught.value.line, caught.value.column) == (line, column)


def test_unterminated_string_is_a_positioned_error() -> None:
    with pytest.raises(SqlError) as caught:
        parse_statement("SELECT 'abc")
    assert caught.value.line == 1 and caught.value.column is not None


def test_end_of_input_is_said_in_words() -> None:
    with pytest.raises(SqlError, match="statement ended"):
        parse_statement("SELECT * FROM")


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1)",
        "COPY t TO 'out.csv'",
        "ATTACH 'other.db'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "PRAGMA version",
        "SET threads = 1",
        "CREATE VIEW v AS SELECT 1",
        "DROP VIEW v",
        "CALL pragma_version()",
    ],
)
def test_statements_that_reach_outside_are_not_allowed(sql: str) -> None:
    with pytest.raises(SqlError, match="not allowed"):
        parse_statement(sql)
