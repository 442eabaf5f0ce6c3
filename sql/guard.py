"""Refuse SQL that would reach outside the data StreamHouse hands to DuckDB.

User SQL is transpiled and run by an embedded DuckDB, which can read files, attach databases
and load extensions. The engine also locks DuckDB down (`enable_external_access=false`); this
is the first line: such statements and table functions never reach execution, and the user is
told why instead of seeing a DuckDB permission error.
"""

from __future__ import annotations

from sqlglot import exp
from streamhouse.sql.errors import SqlError

# Functions that read files, globs or other databases. Anything named read_* is refused too.
FORBIDDEN_FUNCTIONS = frozenset(
    {
        "glob",
        "parquet_scan",
        "parquet_metadata",
        "parquet_schema",
        "sniff_csv",
        "csv_scan",
        "json_scan",
        "iceberg_scan",
        "delta_scan",
        "sqlite_scan",
        "sqlite_attach",
        "postgres_scan",
        "postgres_attach",
        "mysql_scan",
        "query_table",
        "query",
        "load_aws_credentials",
        "getenv",
        "duckdb_settings",
        "duckdb_extensions",
        "duckdb_secrets",
        "which_secret",
    }
)


# Table functions that only generate values.
SAFE_TABLE_FUNCTIONS = (exp.GenerateSeries, exp.Unnest)


def function_name(node: exp.Func) -> str:
    """The name a function is called by in SQL, lower-case (sqlglot maps many to classes)."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    return node.sql_name().lower()


def _is_forbidden(name: str) -> bool:
    return name.startswith("read_") or name in FORBIDDEN_FUNCTIONS


def check_query(ast: exp.Expr) -> None:
    """Raise SqlError when a query calls a file-reading or database-attaching function."""
    for node in ast.find_all(exp.Func):
        name = function_name(node)
        if _is_forbidden(name):
            raise SqlError(f"{name}() is not allowed: queries read topics, streams and tables only")
    for table in ast.find_all(exp.Table):
        if not isinstance(table.this, (exp.Identifier, *SAFE_TABLE_FUNCTIONS)):
            raise SqlError("Table functions are not allowed: FROM takes a topic, stream or table")


def refuse_statement(ast: exp.Expr) -> SqlError:
    """The error for a statement StreamHouse does not run (COPY, ATTACH, INSTALL, SET, ...)."""
    what = ast.name.upper() if isinstance(ast, exp.Command) else type(ast).__name__.upper()
    return SqlError(f"{what} statements are not allowed")
