"""Which COUNT(*) queries offsets alone answer, and which need their rows read."""

from __future__ import annotations

import pytest
from streamhouse.sql import parse_statement
from streamhouse.sql.count_pushdown import counted_from_offsets

TOPIC = {"partition": "partition", "offset": "offset", "timestamp": "timestamp", "key": "key"}
STREAM = {"rowpartition": "partition", "rowoffset": "offset", "rowtime": "timestamp"}


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT COUNT(*) FROM t", "count_star()"),
        ("select count(*) as n from t", "n"),
        ("SELECT COUNT(*) FROM t WHERE partition = 1", "count_star()"),
        ('SELECT COUNT(*) FROM t WHERE "offset" >= 5 AND partition IN (0, 2)', "count_star()"),
        ('SELECT COUNT(*) FROM t WHERE 10 > "offset" AND "offset" BETWEEN 1 AND 3', "count_star()"),
        ('SELECT COUNT(*) FROM t AS x WHERE x."offset" < 7', "count_star()"),
        ("SELECT COUNT(*) FROM t AS OF OFFSET 40", "count_star()"),
    ],
)
def test_offset_predicates_are_answered_from_offsets(sql: str, name: str) -> None:
    assert counted_from_offsets(parse_statement(sql), TOPIC) == name


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*), 1 FROM t",
        "SELECT COUNT(key) FROM t",
        "SELECT COUNT(DISTINCT key) FROM t",
        "SELECT COUNT(*) + 1 FROM t",
        "SELECT COUNT(*) FROM t WHERE key = 'a'",
        "SELECT COUNT(*) FROM t WHERE timestamp >= '2026-01-01'",
        "SELECT COUNT(*) FROM t WHERE partition = 1 OR partition = 2",
        "SELECT COUNT(*) FROM t WHERE NOT partition = 1",
        "SELECT COUNT(*) FROM t WHERE partition <> 1",
        "SELECT COUNT(*) FROM t WHERE partition = '1'",
        'SELECT COUNT(*) FROM t WHERE "offset" > 1.5',
        "SELECT COUNT(*) FROM t WHERE partition IN (SELECT 1)",
        'SELECT COUNT(*) FROM t WHERE "offset" > partition',
        "SELECT COUNT(*) FROM t WHERE value->>'a' = 'b'",
        "SELECT COUNT(*) FROM t GROUP BY partition",
        "SELECT COUNT(*) FROM t HAVING COUNT(*) > 1",
        "SELECT COUNT(*) FROM t LIMIT 0",
        "SELECT COUNT(*) FROM t AS OF TIMESTAMP '2026-01-01'",
        "SELECT COUNT(*) FROM t, u",
        "SELECT COUNT(*) FROM t JOIN u ON t.key = u.key",
        "SELECT COUNT(*) FROM (SELECT * FROM t)",
        "WITH c AS (SELECT * FROM t) SELECT COUNT(*) FROM c",
        "SELECT COUNT(*) FROM t UNION ALL SELECT COUNT(*) FROM t",
        "SELECT COUNT(*) FROM range(10)",
    ],
)
def test_anything_else_needs_the_rows(sql: str) -> None:
    assert counted_from_offsets(parse_statement(sql), TOPIC) is None


def test_a_declared_stream_counts_by_its_pseudo_columns() -> None:
    statement = parse_statement("SELECT COUNT(*) FROM s WHERE ROWPARTITION = 1 AND ROWOFFSET < 9")
    assert counted_from_offsets(statement, STREAM) == "count_star()"
    # A value column that happens to be called `partition` is not the record's partition.
    value_column = parse_statement("SELECT COUNT(*) FROM s WHERE partition = 1")
    assert counted_from_offsets(value_column, STREAM) is None
