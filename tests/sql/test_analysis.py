from __future__ import annotations

import pytest
from streamhouse.sql.analysis import Relation, ScanSpec, analyze
from streamhouse.sql.errors import SqlError
from streamhouse.sql.statements import parse_statement

TOPIC = ["partition", "offset", "timestamp", "key", "value", "headers"]
CATALOG = {"orders": TOPIC, "payments": TOPIC, "users": ["id", "name", "age"]}

JAN_1 = 1767225600000  # 2026-01-01T00:00:00Z in epoch ms


def scans(sql: str) -> tuple[ScanSpec, ...]:
    return analyze(parse_statement(sql), CATALOG.get, CATALOG).scans


def scan(sql: str) -> ScanSpec:
    (only,) = scans(sql)
    return only


def test_no_where_means_a_full_scan() -> None:
    assert scan("SELECT * FROM orders") == ScanSpec(ref=0, table="orders", alias="orders")


def test_partition_equality_and_in() -> None:
    assert scan("SELECT * FROM orders WHERE partition = 2").partitions == {2}
    assert scan("SELECT * FROM orders WHERE partition IN (1, 3)").partitions == {1, 3}


def test_repeated_conjuncts_intersect() -> None:
    spec = scan("SELECT * FROM orders WHERE partition IN (1, 3) AND partition IN (3, 4)")
    assert spec.partitions == {3}
    assert scan("SELECT * FROM orders WHERE partition = 1 AND partition = 2").partitions == set()


@pytest.mark.parametrize(
    ("predicate", "lo", "hi"),
    [
        ("offset > 10", 11, None),
        ("offset >= 10", 10, None),
        ("offset < 10", None, 10),
        ("offset <= 10", None, 11),
        ("offset = 7", 7, 8),
        ("offset BETWEEN 5 AND 9", 5, 10),
        ("10 < offset", 11, None),
        ("offset >= 3 AND offset < 8 AND offset > 4", 5, 8),
    ],
)
def test_offset_ranges_are_half_open(predicate: str, lo: int | None, hi: int | None) -> None:
    spec = scan(f"SELECT * FROM orders WHERE {predicate}")
    assert (spec.offset_min, spec.offset_max) == (lo, hi)


@pytest.mark.parametrize(
    ("predicate", "lo", "hi"),
    [
        ("timestamp >= '2026-01-01T00:00:00Z'", JAN_1, None),
        ("timestamp > '2026-01-01T00:00:00Z'", JAN_1 + 1, None),
        ("timestamp < '2026-01-01T01:00:00+01:00'", None, JAN_1),
        ("timestamp <= '2026-01-01 00:00:00'", None, JAN_1 + 1),
        ("timestamp >= TIMESTAMP '2026-01-01'", JAN_1, None),
        (f"timestamp BETWEEN {JAN_1} AND {JAN_1 + 999}", JAN_1, JAN_1 + 1000),
        ("timestamp < '2026-01-01T00:00:00.0005Z'", None, JAN_1 + 1),
        ("timestamp > '2026-01-01T00:00:00.0005Z'", JAN_1 + 1, None),
        ("timestamp >= '2026-01-01T00:00:00.0005Z'", JAN_1 + 1, None),
    ],
)
def test_timestamp_ranges_in_epoch_ms_utc(predicate: str, lo: int | None, hi: int | None) -> None:
    spec = scan(f"SELECT * FROM orders WHERE {predicate}")
    assert (spec.time_min_ms, spec.time_max_ms) == (lo, hi)


def test_unparseable_timestamp_is_left_to_duckdb() -> None:
    spec = scan("SELECT * FROM orders WHERE timestamp > 'yesterday'")
    assert spec.time_min_ms is None


def test_key_equality_and_in_as_bytes() -> None:
    assert scan("SELECT * FROM orders WHERE key = 'k1'").keys == {b"k1"}
    assert scan("SELECT * FROM orders WHERE key IN ('a', 'é')").keys == {b"a", "é".encode()}


@pytest.mark.parametrize(
    "where",
    [
        "partition = 1 OR partition = 2",
        "NOT partition = 1",
        "partition NOT IN (1, 2)",
        "partition <> 1",
        "NOT offset < 10",
        "key = 'a' OR offset < 10",
        "partition = offset",
        "partition IN (SELECT 1)",
        "key = 1",
    ],
)
def test_or_not_and_non_literal_predicates_are_not_pushed(where: str) -> None:
    spec = scan(f"SELECT * FROM orders WHERE {where}")
    assert spec == ScanSpec(ref=0, table="orders", alias="orders")


def test_pushdown_uses_the_and_terms_next_to_an_or() -> None:
    spec = scan("SELECT * FROM orders WHERE (key = 'a' OR key = 'b') AND partition = 0")
    assert spec.partitions == {0} and spec.keys is None


def test_join_pushes_qualified_predicates_to_their_own_table_only() -> None:
    a, b = scans(
        "SELECT * FROM orders o JOIN payments p ON o.key = p.key "
        "WHERE o.partition = 1 AND p.offset >= 5 AND offset < 3"
    )
    assert (a.alias, a.partitions, a.offset_min, a.offset_max) == ("o", {1}, None, None)
    assert (b.alias, b.partitions, b.offset_min, b.offset_max) == ("p", None, 5, None)


def test_subquery_predicates_apply_to_the_subquery_table() -> None:
    spec = scan("SELECT * FROM (SELECT * FROM orders WHERE partition = 4) WHERE offset > 1")
    assert spec.partitions == {4} and spec.offset_min is None


def test_correlated_names_do_not_prune_the_inner_table() -> None:
    # `partition` is the outer orders' column: users has none, so users is read in full.
    outer, inner = scans(
        "SELECT * FROM orders WHERE EXISTS (SELECT 1 FROM users WHERE partition = 1)"
    )
    assert inner.table == "users" and inner.partitions is None
    assert outer.table == "orders" and outer.partitions is None


def test_as_of_is_normalised() -> None:
    a, b = scans(
        "SELECT * FROM orders AS OF TIMESTAMP '2026-01-01T00:00:00Z' "
        "JOIN payments AS OF OFFSET 99 ON orders.key = payments.key"
    )
    assert (a.as_of_timestamp_ms, a.as_of_offset) == (JAN_1, None)
    assert (b.as_of_timestamp_ms, b.as_of_offset) == (None, 99)
    assert scan(f"SELECT * FROM orders AS OF TIMESTAMP {JAN_1}").as_of_timestamp_ms == JAN_1


def test_bad_as_of_timestamp_is_an_error() -> None:
    with pytest.raises(SqlError, match="not an ISO-8601"):
        scan("SELECT * FROM orders AS OF TIMESTAMP 'soon'")


def test_cte_names_are_not_catalog_references() -> None:
    (spec,) = scans("WITH recent AS (SELECT * FROM orders) SELECT * FROM recent")
    assert spec.table == "orders"


def test_unknown_table_suggests_close_names() -> None:
    with pytest.raises(SqlError) as caught:
        scan("SELECT * FROM ordres")
    assert caught.value.message == (
        "Unknown topic, stream or table 'ordres'. Did you mean 'orders'?"
    )


def test_unknown_table_without_close_names_has_no_suggestion() -> None:
    with pytest.raises(SqlError) as caught:
        scan("SELECT * FROM zzz")
    assert "Did you mean" not in caught.value.message


def test_unknown_column_suggests_close_names() -> None:
    with pytest.raises(SqlError) as caught:
        scan("SELECT nmae FROM users")
    assert caught.value.message == "Unknown column 'nmae' in 'users'. Did you mean 'name'?"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT age + 1 AS older FROM users ORDER BY older",
        "SELECT value.a FROM orders",
        "SELECT list_transform([1, 2], x -> x + 1) FROM users",
        "SELECT * FROM users u WHERE age > (SELECT AVG(age) FROM users WHERE name = u.name)",
        "SELECT name FROM users WHERE EXISTS (SELECT 1 FROM orders WHERE key = name)",
    ],
)
def test_valid_column_uses_are_not_flagged(sql: str) -> None:
    scans(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('s3://bucket/x.parquet')",
        "SELECT * FROM read_json_auto('x.json')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT read_text('/etc/passwd')",
        "SELECT * FROM orders WHERE key IN (SELECT * FROM read_csv('k.csv'))",
        "SELECT * FROM sqlite_scan('x.db', 't')",
    ],
)
def test_file_reading_functions_are_not_allowed(sql: str) -> None:
    with pytest.raises(SqlError, match="not allowed"):
        scans(sql)


def test_reading_a_file_by_its_name_is_an_unknown_table() -> None:
    with pytest.raises(SqlError, match="Unknown topic"):
        scans("SELECT * FROM '/etc/passwd'")


def test_value_generating_table_functions_are_allowed() -> None:
    assert scans("SELECT * FROM range(3)") == ()


# A declared stream: typed columns, pseudo columns mapped to the record fields, and a value
# column named like a record column (`offset`) that must never prune the scan.
STREAM = Relation(
    ("id", "amount", "offset", "ROWTIME", "ROWPARTITION", "ROWOFFSET"),
    {"rowtime": "timestamp", "rowpartition": "partition", "rowoffset": "offset", "id": "key"},
)
TIMED = Relation(("id", "ts", "ROWTIME", "ROWOFFSET"), {"rowoffset": "offset"})


def declared_scan(sql: str, relation: Relation = STREAM) -> ScanSpec:
    catalog = {"s": relation}
    (only,) = analyze(parse_statement(sql), catalog.get, catalog).scans
    return only


def test_pseudo_columns_and_the_key_column_push_into_the_scan() -> None:
    spec = declared_scan(
        "SELECT * FROM s WHERE ROWTIME >= '2026-01-01' AND rowpartition IN (0, 2) "
        "AND ROWOFFSET < 10 AND ID = 'c1'"
    )
    assert (spec.time_min_ms, spec.time_max_ms) == (JAN_1, None)
    assert spec.partitions == {0, 2}
    assert (spec.offset_min, spec.offset_max) == (None, 10)
    assert spec.keys == {b"c1"}
    assert declared_scan("SELECT * FROM s x WHERE x.id IN ('a', 'b')").keys == {b"a", b"b"}


def test_declared_value_columns_never_push_down_even_when_named_like_record_fields() -> None:
    spec = declared_scan('SELECT * FROM s WHERE "offset" = 3 AND amount > 1')
    assert spec == ScanSpec(ref=0, table="s", alias="s")


def test_rowtime_from_a_value_column_is_not_the_record_timestamp() -> None:
    spec = declared_scan("SELECT * FROM s WHERE ROWTIME > '2026-01-01' AND ROWOFFSET >= 4", TIMED)
    assert (spec.time_min_ms, spec.time_max_ms) == (None, None)
    assert spec.offset_min == 4


def test_unknown_declared_column_suggests_close_names() -> None:
    with pytest.raises(SqlError, match=r"Unknown column 'amont'.*'amount'"):
        declared_scan("SELECT amont FROM s")
