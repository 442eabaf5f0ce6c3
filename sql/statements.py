"""Typed statements: what a user asked for, independent of sqlglot's AST shapes.

`parse_statement` / `parse_script` are the entry points for every surface (REST, shell). They
return frozen dataclasses so the engine dispatches on type, and only `QueryStatement` keeps a
sqlglot AST (for analysis and transpiling). Statements StreamHouse does not run (INSERT, COPY,
ATTACH, SET, PRAGMA, ...) are refused here with a SqlError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from streamhouse.sql import nodes
from streamhouse.sql.dialect import StreamHouse
from streamhouse.sql.errors import SqlError, from_sqlglot
from streamhouse.sql.guard import refuse_statement

SourceKind = Literal["stream", "table"]


@dataclass(frozen=True)
class ShowStatement:
    kind: Literal["topics", "streams", "tables", "queries"]


@dataclass(frozen=True)
class DescribeStatement:
    name: str
    extended: bool = False


@dataclass(frozen=True)
class Column:
    """A declared column; `key` is None, "key" (ksqlDB KEY) or "primary" (PRIMARY KEY)."""

    name: str
    type: str  # DuckDB type text, e.g. "BIGINT", "INT[]", "STRUCT(a INT)"
    key: Literal["key", "primary"] | None = None


@dataclass(frozen=True)
class CreateSourceStatement:
    kind: SourceKind
    name: str
    columns: tuple[Column, ...]
    properties: dict[str, Any] = field(default_factory=dict)  # names lower-case
    if_not_exists: bool = False
    or_replace: bool = False


@dataclass(frozen=True)
class DropStatement:
    kind: SourceKind
    name: str
    if_exists: bool = False


@dataclass(frozen=True)
class AsOf:
    """A time-travel clause as written: `kind` "timestamp" or "offset", `value` a literal."""

    kind: Literal["timestamp", "offset"]
    value: str | int


@dataclass(frozen=True, eq=False)
class QueryStatement:
    """A SELECT (or set operation / CTE query). `as_of` maps each table reference's position
    in `table_references(ast)` to its AS OF clause, for the references that have one."""

    ast: exp.Query
    as_of: dict[int, AsOf] = field(default_factory=dict)

    @property
    def sql(self) -> str:
        return self.ast.sql(StreamHouse)


@dataclass(frozen=True)
class ExplainStatement:
    query: QueryStatement


Statement = (
    ShowStatement
    | DescribeStatement
    | ExplainStatement
    | CreateSourceStatement
    | DropStatement
    | QueryStatement
)


def table_name(table: exp.Table) -> str:
    """The catalog name of a table reference: its dotted parts (topic names may contain dots)."""
    return ".".join(part.name for part in table.parts)


def table_references(ast: exp.Expr) -> list[exp.Table]:
    """Every reference to a topic/stream/table in a query, in a fixed (breadth-first) order.

    CTE names are not references; a CTE that shadows a catalog name hides it everywhere.
    """
    ctes = {cte.alias_or_name.lower() for cte in ast.find_all(exp.CTE)}
    return [
        t
        for t in ast.find_all(exp.Table)
        if isinstance(t.this, exp.Identifier) and not (not t.db and t.name.lower() in ctes)
    ]


def _literal_value(node: exp.Expr) -> str | int | float | bool:
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return -_literal_value(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        return int(text) if text.lstrip("-").isdigit() else float(text)
    raise SqlError(f"Expected a literal, got {node.sql(StreamHouse)}")


def _as_of(version: exp.Version) -> AsOf:
    kind = version.name.lower()
    value = _literal_value(version.expression)
    if kind == "offset" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise SqlError("AS OF OFFSET takes a non-negative integer")
    if kind == "timestamp" and not isinstance(value, (str, int)):
        raise SqlError("AS OF TIMESTAMP takes an ISO-8601 string or epoch milliseconds")
    return AsOf(kind, value)  # type: ignore[arg-type]


def _query(ast: exp.Query) -> QueryStatement:
    as_of = {}
    for i, table in enumerate(table_references(ast)):
        version = table.args.get("version")
        if version is not None:
            as_of[i] = _as_of(version)
    return QueryStatement(ast=ast, as_of=as_of)


def _to_statement(ast: exp.Expr) -> Statement:
    if isinstance(ast, exp.Query):
        return _query(ast)
    if isinstance(ast, exp.Show):
        return ShowStatement(ast.name.lower())  # type: ignore[arg-type]
    if isinstance(ast, nodes.DescribeSource):
        return DescribeStatement(table_name(ast.this), bool(ast.args.get("extended")))
    if isinstance(ast, nodes.Explain):
        return ExplainStatement(_query(ast.this))
    if isinstance(ast, nodes.DropSource):
        return DropStatement(
            ast.text("kind").lower(), table_name(ast.this), bool(ast.args.get("exists"))
        )
    if isinstance(ast, nodes.CreateSource):
        columns = tuple(
            Column(
                name=c.name,
                type=c.args["kind"].sql("duckdb"),
                key={"KEY": "key", "PRIMARY KEY": "primary"}.get(c.text("key")),
            )
            for c in ast.expressions
        )
        props = ast.args.get("properties") or []
        properties = {p.name: _literal_value(p.args["value"]) for p in props}
        return CreateSourceStatement(
            kind=ast.text("kind").lower(),  # type: ignore[arg-type]
            name=table_name(ast.this),
            columns=columns,
            properties=properties,
            if_not_exists=bool(ast.args.get("exists")),
            or_replace=bool(ast.args.get("replace")),
        )
    raise refuse_statement(ast)


def _parse(sql: str) -> list[exp.Expr]:
    try:
        parsed = sqlglot.parse(sql, read=StreamHouse)
    except (ParseError, TokenError) as error:
        raise from_sqlglot(error, sql) from None
    return [ast for ast in parsed if ast is not None]


def parse_script(sql: str) -> list[Statement]:
    """All statements of a `;`-separated script, in order."""
    return [_to_statement(ast) for ast in _parse(sql)]


def parse_statement(sql: str) -> Statement:
    """Exactly one statement (a trailing `;` is fine)."""
    asts = _parse(sql)
    if len(asts) != 1:
        raise SqlError(f"Expected one statement, got {len(asts)}")
    return _to_statement(asts[0])
