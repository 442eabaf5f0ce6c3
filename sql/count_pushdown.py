"""COUNT(*) answered from offsets alone, as DuckDB answers it from Parquet row counts.

Offsets in a StreamHouse partition are dense (no compaction, no transaction markers), so the
number of records between two offsets is their difference: `SELECT COUNT(*) FROM t` needs no
record read when every predicate it has is one the scan applies exactly by offset range, i.e.
on the partition or the offset (`=`, `<`, `<=`, `>`, `>=`, `BETWEEN`, `IN` with integer
literals, ANDed). A predicate on time or key, `AS OF TIMESTAMP`, or any other clause (GROUP BY,
DISTINCT, joins, ...) needs the rows, and the query runs normally.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp
from streamhouse.sql.pushdown import conjuncts
from streamhouse.sql.statements import QueryStatement

#: DuckDB's name for an unaliased COUNT(*) column.
COUNT_STAR = "count_star()"
_OFFSET_FIELDS = frozenset({"partition", "offset"})
_RANGE_OPS = (exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_CLAUSES = ("with_", "joins", "group", "having", "qualify", "order", "limit", "offset", "distinct")


def _is_integer(node: exp.Expr) -> bool:
    node = node.unnest()
    if isinstance(node, exp.Neg):
        node = node.this
    return isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit()


def _counted_name(projection: exp.Expr) -> str | None:
    """The column name of a lone `COUNT(*)` projection, else None."""
    alias = None
    if isinstance(projection, exp.Alias):
        alias, projection = projection.alias, projection.this
    if not isinstance(projection, exp.Count) or not isinstance(projection.this, exp.Star):
        return None
    return alias or COUNT_STAR


def _offset_only(term: exp.Expr, fields: Mapping[str, str]) -> bool:
    """Whether `term` restricts only the partition or the offset, by integer literals."""

    def is_offset_column(node: exp.Expr) -> bool:
        node = node.unnest()
        return isinstance(node, exp.Column) and fields.get(node.name.lower()) in _OFFSET_FIELDS

    if isinstance(term, exp.Between):
        low, high = term.args["low"], term.args["high"]
        return is_offset_column(term.this) and _is_integer(low) and _is_integer(high)
    if isinstance(term, exp.In):
        values = term.expressions
        if term.args.get("query") is not None or not values:
            return False
        return is_offset_column(term.this) and all(_is_integer(v) for v in values)
    if isinstance(term, _RANGE_OPS):
        left, right = term.this, term.expression
        return (is_offset_column(left) and _is_integer(right)) or (
            is_offset_column(right) and _is_integer(left)
        )
    return False


def counted_from_offsets(statement: QueryStatement, fields: Mapping[str, str]) -> str | None:
    """The output column name when `statement` is a COUNT(*) that offsets alone answer, else
    None. `fields` maps the table's lower-cased column names to the record field each is."""
    ast = statement.ast
    if not isinstance(ast, exp.Select) or any(ast.args.get(c) for c in _CLAUSES):
        return None
    if len(ast.expressions) != 1:
        return None
    name = _counted_name(ast.expressions[0])
    from_ = ast.args.get("from_")
    if name is None or from_ is None or not isinstance(from_.this, exp.Table):
        return None
    table = from_.this
    if not isinstance(table.this, exp.Identifier) or table.args.get("joins"):
        return None
    if any(v.kind == "timestamp" for v in statement.as_of.values()):
        return None
    where = ast.args.get("where")
    terms = conjuncts(where.this) if where is not None else []
    if not all(_offset_only(t, fields) for t in terms):
        return None
    return name
