"""The logical plan EXPLAIN prints: every clause in its place, every scan named."""

from __future__ import annotations

from streamhouse.sql import parse_statement
from streamhouse.sql.logical_plan import logical_plan


def plan(sql: str) -> list[str]:
    lines = []
    for root in logical_plan(parse_statement(sql), lambda ref: f"#{ref}"):
        for depth, node in root.walk():
            lines.append(f"{'  ' * depth}{node.operator} {node.detail}".rstrip())
    return lines


def test_clauses_in_sql_logical_order() -> None:
    assert plan(
        "SELECT DISTINCT key, COUNT(*) AS n FROM t WHERE partition = 1 GROUP BY key "
        "HAVING COUNT(*) > 2 ORDER BY n DESC LIMIT 5 OFFSET 1"
    ) == [
        "Limit 5 offset 1",
        "  Sort n DESC",
        "    Distinct",
        "      Project key, COUNT(*) AS n",
        "        Filter having COUNT(*) > 2",
        "          Aggregate group by key; COUNT(*)",
        "            Filter partition = 1",
        "              Scan t: #0",
    ]


def test_joins_nest_left_deep_with_their_conditions() -> None:
    assert plan("SELECT * FROM a LEFT JOIN b USING (key) JOIN c AS x ON x.key = a.key") == [
        "Project *",
        "  Join INNER ON x.key = a.key",
        "    Join LEFT USING key",
        "      Scan a: #0",
        "      Scan b: #1",
        "    Scan c AS x: #2",
    ]


def test_ctes_are_planned_once_and_scanned_by_name() -> None:
    assert plan("WITH s AS (SELECT key FROM t) SELECT * FROM s JOIN s AS s2 USING (key)") == [
        "CTE s",
        "  Project key",
        "    Scan t: #0",
        "Project *",
        "  Join INNER USING key",
        "    CTE Scan s",
        "    CTE Scan s AS s2",
    ]


def test_subqueries_in_clauses_and_set_operations_show_their_scans() -> None:
    lines = plan(
        "SELECT key, (SELECT MAX(1) FROM u) AS m FROM t WHERE key IN (SELECT key FROM v) "
        "UNION ALL SELECT key, 1 FROM (SELECT key FROM w) AS sub"
    )
    assert lines == [
        "Union All",
        "  Project key, (SELECT MAX(1) FROM u) AS m",
        "    Filter key IN (SELECT key FROM v)",
        "      Scan t: #0",
        "      Subquery",
        "        Project key",
        "          Scan v: #3",
        "    Subquery",
        "      Project MAX(1)",
        "        Aggregate MAX(1)",
        "          Scan u: #1",
        "  Project key, 1",
        "    Subquery sub",
        "      Project key",
        "        Scan w: #2",
    ]


def test_windows_and_qualify_come_after_aggregation() -> None:
    assert plan(
        "SELECT key, SUM(COUNT(*)) OVER () AS total FROM t GROUP BY key QUALIFY total > 1"
    ) == [
        "Project key, SUM(COUNT(*)) OVER () AS total",
        "  Filter qualify total > 1",
        "    Window SUM(COUNT(*)) OVER ()",
        "      Aggregate group by key; COUNT(*)",
        "        Scan t: #0",
    ]


def test_queries_without_topics() -> None:
    assert plan("SELECT 1") == ["Project 1", "  Values one row"]
    assert plan("SELECT * FROM range(3)") == ["Project *", "  Table Function RANGE(0, 3)"]
