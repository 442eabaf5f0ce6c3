"""Turn an analysed query into the DuckDB SQL the engine runs.

The engine registers each scan's Arrow data under a relation name of its choosing; here every
table reference is renamed to that relation, keeping the name the query used as the alias so
`orders.value` or `o.value` still resolve, and AS OF is dropped (the scan already applied it).
The caller's AST is never modified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlglot import exp
from streamhouse.sql.statements import QueryStatement, table_references


def to_duckdb(
    statement: QueryStatement, relations: Mapping[int, str] | Sequence[str], pretty: bool = False
) -> str:
    """DuckDB SQL for `statement` with reference i (see `table_references`) read from
    `relations[i]`; every reference must have a relation."""
    ast = statement.ast.copy()
    for ref, table in enumerate(table_references(ast)):
        try:
            relation = relations[ref]
        except (IndexError, KeyError):
            raise ValueError(f"no relation given for table reference {ref}") from None
        alias = table.args.get("alias") or exp.TableAlias(this=table.this.copy())
        table.replace(exp.Table(this=exp.to_identifier(relation, quoted=True), alias=alias))
    return ast.sql("duckdb", pretty=pretty)
