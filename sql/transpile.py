"""Turn an analysed query into the DuckDB SQL the engine runs.

The engine registers each scan's Arrow data under a relation name of its choosing; here every
table reference is renamed to that relation, keeping the name the query used as the alias so
`orders.value` or `o.value` still resolve, and AS OF is dropped (the scan already applied it).

Record times may be compared with epoch milliseconds, as Kafka and ksqlDB users write them
(`WHERE timestamp >= 1767225600000`); DuckDB refuses to compare a TIMESTAMP with an integer, so
an integer literal compared with a time column becomes `epoch_ms(literal)`, the same instant
the pushdown reads it as. The caller's AST is never modified.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sqlglot import exp
from streamhouse.sql.statements import QueryStatement, table_references

#: Columns holding a record time (a topic's `timestamp`, a declared stream's ROWTIME).
TIME_COLUMNS = frozenset({"timestamp", "rowtime"})
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def _is_integer(node: exp.Expr) -> bool:
    node = node.unnest()
    if isinstance(node, exp.Neg):
        node = node.this
    return isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit()


def _epoch_ms(node: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this="epoch_ms", expressions=[node.copy()])


def _is_time_column(node: exp.Expr, time_columns: Collection[str]) -> bool:
    node = node.unnest()
    return isinstance(node, exp.Column) and node.name.lower() in time_columns


def _epoch_ms_literals(ast: exp.Expr, time_columns: Collection[str]) -> None:
    """Wraps integer literals compared with a time column in `epoch_ms(...)`, in place."""
    for node in list(ast.find_all(*_COMPARISONS, exp.Between, exp.In)):
        if isinstance(node, exp.Between):
            if _is_time_column(node.this, time_columns):
                for arg in ("low", "high"):
                    if _is_integer(node.args[arg]):
                        node.set(arg, _epoch_ms(node.args[arg]))
        elif isinstance(node, exp.In):
            if _is_time_column(node.this, time_columns):
                node.set(
                    "expressions",
                    [_epoch_ms(e) if _is_integer(e) else e for e in node.expressions],
                )
        else:
            left, right = node.this, node.expression
            if _is_time_column(left, time_columns) and _is_integer(right):
                node.set("expression", _epoch_ms(right))
            elif _is_time_column(right, time_columns) and _is_integer(left):
                node.set("this", _epoch_ms(left))


def to_duckdb(
    statement: QueryStatement,
    relations: Mapping[int, str] | Sequence[str],
    pretty: bool = False,
    time_columns: Collection[str] = TIME_COLUMNS,
) -> str:
    """DuckDB SQL for `statement` with reference i (see `table_references`) read from
    `relations[i]`; every reference must have a relation. `time_columns` (lower case) are the
    TIMESTAMP columns an integer literal may be compared with as epoch milliseconds."""
    ast = statement.ast.copy()
    for ref, table in enumerate(table_references(ast)):
        try:
            relation = relations[ref]
        except (IndexError, KeyError):
            raise ValueError(f"no relation given for table reference {ref}") from None
        alias = table.args.get("alias") or exp.TableAlias(this=table.this.copy())
        table.replace(exp.Table(this=exp.to_identifier(relation, quoted=True), alias=alias))
    _epoch_ms_literals(ast, time_columns)
    return ast.sql("duckdb", pretty=pretty)
