"""sqlglot expression nodes for the ksqlDB statements DuckDB's grammar has no node for.

Queries reuse sqlglot's own nodes (and `exp.Version` for AS OF); only the source declarations
and catalog statements need new ones. Each node is generated back to SQL by the StreamHouse
generator, so a parsed statement round-trips through `sql()`.
"""

from __future__ import annotations

from sqlglot import exp


class SourceColumn(exp.Expression):
    """A column of CREATE STREAM/TABLE: `name TYPE [KEY | PRIMARY KEY]`; `key` is that text."""

    arg_types = {"this": True, "kind": True, "key": False}


class CreateSource(exp.Expression):
    """CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name [(columns)] [WITH (k=v, ...)]."""

    arg_types = {
        "this": True,
        "kind": True,
        "expressions": False,
        "properties": False,
        "exists": False,
        "replace": False,
    }


class DropSource(exp.Expression):
    """DROP STREAM|TABLE [IF EXISTS] name."""

    arg_types = {"this": True, "kind": True, "exists": False}


class DescribeSource(exp.Expression):
    """ksqlDB's `DESCRIBE name [EXTENDED]` (the modifier comes after the name)."""

    arg_types = {"this": True, "extended": False}


class Explain(exp.Expression):
    """EXPLAIN <query>: show the plan and the pushdown instead of running the query."""

    arg_types = {"this": True}
