"""AVRO values without a schema registry: the schema is derived from the declared columns.

ksqlDB writes AVRO with a schema it derives from the columns: a record whose fields are the
value columns in declared order, each a union of null and the column's type. Binary Avro carries
no field names, only that order and those types, so a value written with such a schema decodes
here with the same derivation, whatever names its writer used. Values come in Confluent's wire
format (magic byte 0, a 4-byte schema id, then the Avro body) or as a bare Avro body.

This is the one decoder with a per-record loop (inside fastavro, in a worker thread): Avro's
variable-length encoding has no vectorised decoder here. A value that does not decode, or
leaves bytes over, is a row of NULLs.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import fastavro
import pyarrow as pa
from streamhouse.broker.metadata import DeclaredColumn
from streamhouse.sql import SqlError

_VALID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PRIMITIVES = {
    pa.bool_(): "boolean",
    pa.int8(): "int",
    pa.int16(): "int",
    pa.int32(): "int",
    pa.int64(): "long",
    pa.float32(): "float",
    pa.float64(): "double",
    pa.string(): "string",
    pa.binary(): "bytes",
    pa.date32(): {"type": "int", "logicalType": "date"},
}


def _avro_type(t: pa.DataType, path: str) -> object | None:
    """The Avro type of an Arrow type, or None when Avro (as ksqlDB uses it) has none."""
    if t in _PRIMITIVES:
        return _PRIMITIVES[t]
    if pa.types.is_decimal(t):
        return {"type": "bytes", "logicalType": "decimal", "precision": t.precision,
                "scale": t.scale}  # fmt: skip
    if pa.types.is_timestamp(t) and t.tz is None:
        return {"type": "long", "logicalType": "timestamp-millis"}
    if pa.types.is_time(t):
        return {"type": "int", "logicalType": "time-millis"}
    if pa.types.is_list(t):
        items = _avro_type(t.value_type, path)
        return None if items is None else {"type": "array", "items": ["null", items]}
    if pa.types.is_map(t):
        values = _avro_type(t.item_type, path)
        if t.key_type != pa.string() or values is None:
            return None
        return {"type": "map", "values": ["null", values]}
    if pa.types.is_struct(t):
        fields = []
        for f in t:
            if not _VALID.fullmatch(f.name):
                return None
            inner = _avro_type(f.type, f"{path}_{f.name}")
            if inner is None:
                return None
            fields.append({"name": f.name, "type": ["null", inner], "default": None})
        return {"type": "record", "name": path, "fields": fields}
    return None


def check_avro_type(column: str, t: pa.DataType) -> None:
    if _avro_type(t, "check") is None:
        raise SqlError(
            f"The 'AVRO' format cannot hold column `{column}` of type {t}: use BOOLEAN, INT, "
            "BIGINT, FLOAT, DOUBLE, DECIMAL, VARCHAR, BYTES, DATE, TIME, TIMESTAMP, arrays, "
            "maps with VARCHAR keys, and structs whose field names are Avro names"
        )


def field_names(columns: Sequence[DeclaredColumn]) -> list[str]:
    """Avro field names for the columns: upper-cased as ksqlDB does, made valid and unique."""
    names: list[str] = []
    for column in columns:
        name = re.sub(r"[^A-Za-z0-9_]", "_", column.name.upper())
        if not _VALID.fullmatch(name):
            name = f"_{name}"
        base, n = name, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names


class AvroValues:
    """Decodes a batch's value bytes into one struct column of the declared value columns."""

    def __init__(self, columns: Sequence[DeclaredColumn], arrow_types: Sequence[pa.DataType]):
        names = field_names(columns)
        self.schema_json = {
            "type": "record",
            "name": "KsqlDataSourceSchema",
            "namespace": "io.confluent.ksql.avro_schemas",
            "fields": [
                {"name": n, "type": ["null", _avro_type(t, f"KsqlDataSourceSchema_{n}")],
                 "default": None}
                for n, t in zip(names, arrow_types, strict=True)
            ],
        }  # fmt: skip
        self.schema = fastavro.parse_schema(self.schema_json)
        self.type = pa.struct([pa.field(n, t) for n, t in zip(names, arrow_types, strict=True)])
        self.names = names

    def _decode_one(self, data: bytes | None) -> dict | None:
        if data is None:
            return None
        starts = (5, 0) if len(data) >= 5 and data[0] == 0 else (0,)
        for start in starts:
            buffer = io.BytesIO(data)
            buffer.seek(start)
            try:
                record = fastavro.schemaless_reader(buffer, self.schema, None)
            except Exception:  # any malformed body is a row of NULLs
                continue
            if buffer.tell() == len(data):
                return record
        return None

    def decode(self, values: pa.Array) -> pa.Array:
        records = [self._decode_one(v) for v in values.to_pylist()]
        try:
            return pa.array(records, type=self.type)
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            return pa.array([_or_none(self.type, r) for r in records], type=self.type)


def _or_none(t: pa.DataType, record: dict | None) -> dict | None:
    """One record converted alone: a value Arrow cannot hold becomes NULL, not a failed batch."""
    try:
        pa.array([record], type=t)
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        return None
    return record
