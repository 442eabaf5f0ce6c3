"""Which scan columns a query can read, so companions are read for those columns only.

DuckDB pulls whole record batches from a scan and never says which columns it uses, so the
engine derives them from the query itself, conservatively: every identifier anywhere in the
statement that names a scan column counts as used, whichever table it belongs to. Anything
that can reach columns without naming them - ``*`` (also ``t.*``, ``COLUMNS(*)``), a table
used as a value (``SELECT t FROM t``, a row as a struct), ``NATURAL JOIN`` - means every column.
Reading a column that is not needed only costs time; leaving out one that is would return
nulls, so every doubt reads more.
"""

from __future__ import annotations

from sqlglot import exp

#: The view's column -> the scan column it is computed from (``duckdb_adapter.register_topic``).
_VIEW_TO_SCAN = {
    "partition": "partition",
    "offset": "offset",
    "timestamp": "timestamp",
    "key": "key",
    "key_bytes": "key",
    "value": "value",
    "value_bytes": "value",
    "headers": "headers",
}


def scan_columns(query: exp.Expression) -> frozenset[str] | None:
    """The scan columns ``query`` may read; None when it may read them all."""
    for star in query.find_all(exp.Star):
        if not isinstance(star.parent, exp.Count):  # COUNT(*) reads no column
            return None
    for func in query.find_all(exp.Func):
        if func.sql_name().upper() == "COLUMNS" or getattr(func, "name", "").upper() == "COLUMNS":
            return None
    for join in query.find_all(exp.Join):
        if join.args.get("method") or str(join.args.get("kind") or "").upper() == "NATURAL":
            return None
    tables = set()
    for table in query.find_all(exp.Table):
        tables.add(table.name.lower())
        if table.alias:
            tables.add(table.alias.lower())
    for alias in query.find_all(exp.TableAlias):
        tables.add(alias.name.lower())
    used = set()
    for column in query.find_all(exp.Column):
        name = column.name.lower()
        if not column.table and name in tables:
            return None  # a whole row as a value
        used.add(name)
    for ident in query.find_all(exp.Identifier):
        used.add(ident.name.lower())
    return frozenset(_VIEW_TO_SCAN[n] for n in used if n in _VIEW_TO_SCAN)
