"""Declared streams and tables: CREATE/DROP checked as ksqlDB does, and their typed reading.

`declaration.declare` turns a CREATE statement into the declaration the metadata store keeps;
`decode.register_source` makes a scan of the declared topic a DuckDB relation with the declared
columns and ksqlDB's pseudo columns; `describe` builds DESCRIBE/SHOW rows for them.
"""

from __future__ import annotations

from .declaration import PSEUDO_COLUMNS, Reading, declare
from .decode import register_source

__all__ = ["PSEUDO_COLUMNS", "Reading", "declare", "register_source"]
