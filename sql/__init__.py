"""The ksqlDB-flavoured SQL dialect, analysis and logical plans; knows nothing of execution.

The pipeline is parse (`statements.parse_statement`) -> analyse against the catalog
(`analysis.analyze`, giving a `ScanSpec` per table reference) -> transpile to DuckDB SQL over
the relations the engine registers (`transpile.to_duckdb`). Every user error is a `SqlError`.
"""

from streamhouse.sql.analysis import Analysis, Relation, ScanSpec, analyze
from streamhouse.sql.errors import SqlError
from streamhouse.sql.statements import parse_script, parse_statement
from streamhouse.sql.transpile import to_duckdb

__all__ = [
    "Analysis",
    "Relation",
    "ScanSpec",
    "SqlError",
    "analyze",
    "parse_script",
    "parse_statement",
    "to_duckdb",
]
