"""A query's Arrow result as JSON-ready columns and rows.

Conversion is column by column (Arrow compute where it exists); only nested, decimal and binary
columns need Python values. Encodings: timestamps are ISO-8601 strings in UTC (`...Z`), dates
ISO dates, bytes base64, decimals an int when their scale is 0 and a float otherwise, and
non-finite floats null (JSON has no NaN).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

_PRIMITIVE = {
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.uint8(): "UTINYINT",
    pa.uint16(): "USMALLINT",
    pa.uint32(): "UINTEGER",
    pa.uint64(): "UBIGINT",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.string_view(): "VARCHAR",
    pa.binary(): "BLOB",
    pa.large_binary(): "BLOB",
    pa.binary_view(): "BLOB",
    pa.date32(): "DATE",
    pa.null(): "NULL",
}


@dataclass(frozen=True)
class SqlResult:
    """What every SQL surface shows: typed columns, rows as JSON values, and the limits hit."""

    columns: list[dict[str, str]]
    rows: list[list[Any]]
    truncated: bool = False
    elapsed_ms: float = 0.0

    def document(self) -> dict[str, Any]:
        """The `POST /api/v1/sql` response body (DESIGN.md)."""
        return {
            "columns": self.columns,
            "rows": self.rows,
            "row_count": len(self.rows),
            "truncated": self.truncated,
            "elapsed_ms": round(self.elapsed_ms, 3),
        }


def type_name(t: pa.DataType) -> str:
    """The DuckDB spelling of an Arrow type, as users wrote it in SQL."""
    if t in _PRIMITIVE:
        return _PRIMITIVE[t]
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return f"{type_name(t.value_type)}[]"
    if pa.types.is_fixed_size_list(t):
        return f"{type_name(t.value_type)}[{t.list_size}]"
    if pa.types.is_struct(t):
        fields = ", ".join(f"{f.name} {type_name(f.type)}" for f in t)
        return f"STRUCT({fields})"
    if pa.types.is_map(t):
        return f"MAP({type_name(t.key_type)}, {type_name(t.item_type)})"
    if pa.types.is_interval(t):
        return "INTERVAL"
    return str(t).upper()


def _jsonable(value: Any) -> Any:
    """One Python value of a nested/decimal/binary column as JSON."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(x, tuple) and len(x) == 2 for x in value):
            return {str(k): _jsonable(v) for k, v in value}  # a MAP's (key, value) pairs
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def _column_values(column: pa.ChunkedArray) -> list[Any]:
    t = column.type
    if pa.types.is_timestamp(t):
        utc = column.cast(pa.timestamp(t.unit, "UTC")) if t.tz else column
        return pc.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ").to_pylist()
    if pa.types.is_floating(t):
        return pc.if_else(pc.is_finite(column), column, None).to_pylist()
    if pa.types.is_date(t):
        return column.cast(pa.string()).to_pylist()
    if t in _PRIMITIVE and _PRIMITIVE[t] != "BLOB":
        return column.to_pylist()
    return [_jsonable(v) for v in column.to_pylist()]


def from_arrow(table: pa.Table, truncated: bool = False, elapsed_ms: float = 0.0) -> SqlResult:
    columns = [{"name": f.name, "type": type_name(f.type)} for f in table.schema]
    values = [_column_values(c) for c in table.columns]
    rows = [list(row) for row in zip(*values, strict=True)] if values else []
    return SqlResult(columns, rows, truncated, elapsed_ms)


def from_rows(columns: list[tuple[str, str]], rows: list[list[Any]]) -> SqlResult:
    """A result the service builds itself (SHOW, DESCRIBE, EXPLAIN)."""
    return SqlResult([{"name": n, "type": t} for n, t in columns], rows)
