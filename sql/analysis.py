"""Bind a query to the catalog and decide, per table reference, what the engine must scan.

Analysis is the step between parsing and execution: it refuses file/extension access, resolves
every table reference against the catalog (unknown names get did-you-mean suggestions), checks
column names where that is unambiguous, and turns WHERE predicates and AS OF clauses into a
`ScanSpec` per reference. The query AST itself is not changed: the engine transpiles it with
`streamhouse.sql.transpile` and DuckDB re-applies the full WHERE over what was scanned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlglot import exp
from streamhouse.sql.errors import SqlError, did_you_mean
from streamhouse.sql.guard import check_query
from streamhouse.sql.pushdown import Bounds, extract, record_fields, to_epoch_ms
from streamhouse.sql.statements import QueryStatement, table_name, table_references


@dataclass(frozen=True)
class Relation:
    """What the catalog says of one name: its columns, and which of them are record fields.

    `fields` maps lower-cased column names to the log record field each one is (`partition`,
    `offset`, `timestamp`, `key`), so predicates on them prune the scan. A declared stream maps
    ROWTIME/ROWPARTITION/ROWOFFSET and its key column; a topic its own record columns.
    """

    columns: tuple[str, ...]
    fields: Mapping[str, str]


# name -> a Relation, or just the columns of a topic (names, or objects with a `.name`), or
# None when there is no such topic/stream/table.
Catalog = Callable[[str], "Relation | Sequence | None"]


@dataclass(frozen=True)
class ScanSpec:
    """What one table reference needs read. None everywhere means "no restriction".

    `ref` is the reference's position in `table_references(query.ast)` (what transpile keys
    on). Offset and time ranges are half-open: `*_min` inclusive, `*_max` exclusive; times are
    epoch ms UTC. `as_of_offset` is the last offset visible (inclusive) and
    `as_of_timestamp_ms` the instant whose view is wanted. The record-column predicates
    (partition, offset, timestamp, key) are the log's own record fields.
    """

    ref: int
    table: str
    alias: str
    partitions: frozenset[int] | None = None
    offset_min: int | None = None
    offset_max: int | None = None
    time_min_ms: int | None = None
    time_max_ms: int | None = None
    keys: frozenset[bytes] | None = None
    as_of_timestamp_ms: int | None = None
    as_of_offset: int | None = None


@dataclass(frozen=True, eq=False)
class Analysis:
    query: QueryStatement
    scans: tuple[ScanSpec, ...]


def _column_names(columns: Sequence) -> list[str]:
    return [c if isinstance(c, str) else c.name for c in columns]


def _sources(select: exp.Select) -> list[exp.Expr]:
    from_ = select.args.get("from_")
    sources = [from_.this] if from_ is not None else []
    return sources + [join.this for join in select.args.get("joins") or []]


def _owning_select(table: exp.Table) -> exp.Select | None:
    select = table.find_ancestor(exp.Select)
    if select is None or not any(s is table for s in _sources(select)):
        return None
    return select


def _column_matcher(table: exp.Table, select: exp.Select, columns: list[str]):
    """A predicate: is this node a column of `table` within `select`?

    An unqualified name only counts when `table` is the select's one source and has that
    column: otherwise it may be a correlated reference to an outer query's table, and pruning
    this table by it would drop rows.
    """
    single = len(_sources(select)) == 1
    alias = table.alias_or_name.lower()
    own = {c.lower() for c in columns}

    def is_column(node: exp.Expr) -> bool:
        if not isinstance(node, exp.Column) or node.args.get("db"):
            return False
        qualifier = node.table.lower()
        if qualifier:
            return qualifier == alias
        return single and node.name.lower() in own

    return is_column


def _relation(found: Relation | Sequence) -> Relation:
    if isinstance(found, Relation):
        return found
    columns = tuple(_column_names(found))
    return Relation(columns, record_fields(columns))


def _bounds(table: exp.Table, relation: Relation) -> Bounds:
    """Pushdown from the WHERE of the SELECT whose FROM/JOIN holds `table`."""
    select = _owning_select(table)
    if select is None:
        return Bounds()
    where = select.args.get("where")
    is_column = _column_matcher(table, select, list(relation.columns))
    return extract(where.this if where else None, is_column, relation.fields)


def _as_of_ms(statement: QueryStatement, ref: int) -> tuple[int | None, int | None]:
    as_of = statement.as_of.get(ref)
    if as_of is None:
        return None, None
    if as_of.kind == "offset":
        return None, int(as_of.value)
    ms = to_epoch_ms(as_of.value)
    if ms is None:
        raise SqlError(f"AS OF TIMESTAMP {as_of.value!r} is not an ISO-8601 time or epoch ms")
    return ms, None


def _check_columns(ast: exp.Expr, columns: dict[int, list[str]], refs: list[exp.Table]) -> None:
    """Unknown column names in selects over a single catalog table, with suggestions.

    Lenient on purpose: a name is only unknown when no referenced table has it and it is no
    alias anywhere, so correlated subqueries, lambdas and DuckDB's alias reuse never trip it.
    """
    known = {name.lower() for cols in columns.values() for name in cols}
    known |= {a.alias.lower() for a in ast.find_all(exp.Alias)}
    known |= {a.name.lower() for a in ast.find_all(exp.TableAlias) if a.name}
    known |= {c.alias_or_name.lower() for c in ast.find_all(exp.CTE)}
    for i, table in enumerate(refs):
        cols = columns.get(i)
        select = _owning_select(table)
        if not cols or select is None or len(_sources(select)) != 1:
            continue
        for column in select.find_all(exp.Column):
            # Cheap tests first: the ancestor walks cost the expression's depth each.
            if column.table or column.name.lower() in known:
                continue
            if column.find_ancestor(exp.Select) is not select or column.find_ancestor(exp.Lambda):
                continue
            raise SqlError(
                f"Unknown column {column.name!r} in {table_name(table)!r}."
                + (did_you_mean(column.name, cols))
            )


def analyze(statement: QueryStatement, catalog: Catalog, names: Iterable[str] = ()) -> Analysis:
    """Resolve and check `statement`, and compute a ScanSpec per table reference.

    `names` are all catalog names, used only for did-you-mean suggestions.
    """
    check_query(statement.ast)
    refs = table_references(statement.ast)
    columns: dict[int, list[str]] = {}
    scans = []
    for ref, table in enumerate(refs):
        name = table_name(table)
        found = catalog(name)
        if found is None:
            raise SqlError(f"Unknown topic, stream or table {name!r}." + did_you_mean(name, names))
        relation = _relation(found)
        columns[ref] = list(relation.columns)
        bounds = _bounds(table, relation)
        as_of_ms, as_of_offset = _as_of_ms(statement, ref)
        scans.append(
            ScanSpec(
                ref=ref,
                table=name,
                alias=table.alias_or_name,
                **vars(bounds),
                as_of_timestamp_ms=as_of_ms,
                as_of_offset=as_of_offset,
            )
        )
    _check_columns(statement.ast, columns, refs)
    return Analysis(statement, tuple(scans))
