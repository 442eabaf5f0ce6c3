"""A query's Arrow result as JSON-ready columns and rows.

Conversion is column by column (Arrow compute where it exists); only nested, decimal and binary
columns need Python values. Encodings: timestamps are ISO-8601 strings in UTC (`...Z`), dates
ISO dates, bytes base64, decimals an int when their scale is 0 and a float otherwise, and
non-finite floats null (JSON has no NaN).

`json_lines` writes the same encodings as NDJSON for the streaming endpoint, batch-wide: each
column becomes an Arrow array of JSON texts (numbers cast, strings escaped with Arrow string
kernels), the columns are joined element-wise, and the lines leave as one buffer; only the
columns that need Python values above go through Python (`json.dumps` of each value).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
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
    stats: dict[str, int] | None = None  # what the scans read; None when nothing was scanned

    def document(self) -> dict[str, Any]:
        """The `POST /api/v1/sql` response body (DESIGN.md, plus the optional `stats`)."""
        body = {
            "columns": self.columns,
            "rows": self.rows,
            "row_count": len(self.rows),
            "truncated": self.truncated,
            "elapsed_ms": round(self.elapsed_ms, 3),
        }
        if self.stats is not None:
            body["stats"] = self.stats
        return body


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


_JSON_ESCAPES = [("\\", "\\\\"), ('"', '\\"')] + [
    (chr(c), json.dumps(chr(c))[1:-1]) for c in range(0x20)
]
_CONTROL = "[\\x00-\\x1f]"


def _json_strings(column: pa.Array) -> pa.Array:
    """Strings as JSON string literals (escaped and quoted); null stays null."""
    escaped = pc.replace_substring(column, "\\", "\\\\")
    escaped = pc.replace_substring(escaped, '"', '\\"')
    if pc.any(pc.match_substring_regex(escaped, _CONTROL)).as_py():
        for raw, text in _JSON_ESCAPES[2:]:
            escaped = pc.replace_substring(escaped, raw, text)
    return pc.binary_join_element_wise('"', escaped, '"', "")


def _json_texts(column: pa.Array) -> pa.Array:
    """One JSON text per value of ``column``, encoded as :func:`from_arrow` encodes it."""
    t = column.type
    if pa.types.is_timestamp(t):
        utc = column.cast(pa.timestamp(t.unit, "UTC")) if t.tz else column
        texts = _json_strings(pc.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ"))
    elif pa.types.is_date(t):
        texts = _json_strings(column.cast(pa.string()))
    elif pa.types.is_floating(t):
        finite = pc.if_else(pc.is_finite(column), column, None)
        texts = finite.cast(pa.float64()).cast(pa.string())
    elif pa.types.is_integer(t) or pa.types.is_boolean(t):
        texts = column.cast(pa.string())
    elif t in _PRIMITIVE and _PRIMITIVE[t] == "VARCHAR":
        texts = _json_strings(column.cast(pa.string()))
    elif pa.types.is_null(t):
        texts = pa.nulls(len(column), pa.string())
    else:
        texts = pa.array([json.dumps(v) for v in _column_values(column)], pa.string())
    return texts.fill_null("null")


def json_lines(batch: pa.RecordBatch) -> bytes:
    """The rows of ``batch`` as NDJSON: one JSON array per row, each line ending in a newline."""
    if batch.num_rows == 0:
        return b""
    if batch.num_columns == 0:
        return b"[]\n" * batch.num_rows
    texts = [_json_texts(c) for c in batch.columns]
    lines = pc.binary_join_element_wise("[", pc.binary_join_element_wise(*texts, ","), "]\n", "")
    return _concatenated(lines)


def _concatenated(strings: pa.Array) -> bytes:
    """The values of a string array back to back, straight from its data buffer."""
    strings = strings.cast(pa.large_string()) if strings.type != pa.large_string() else strings
    offsets = strings.buffers()[1]
    first, last = pa.Array.from_buffers(
        pa.int64(), len(strings) + 1, [None, offsets], offset=strings.offset
    ).to_numpy()[[0, -1]]
    return strings.buffers()[2].slice(int(first), int(last - first)).to_pybytes()
