"""A declared stream/table as a DuckDB relation: typed columns decoded from the record bytes.

The scan's Arrow batches are registered as they are (`<relation>__raw`) and `<relation>` is a
view whose columns are the declared ones, decoded by DuckDB expressions over whole vectors:

- JSON: each value is parsed once (`TRY_CAST(... AS JSON)`); a column is the field of the
  same name, else the first field whose name matches ignoring case (ksqlDB matches fields
  case-insensitively). Scalars are cast from the field's text, nested types from its JSON;
  TIMESTAMP also takes epoch ms, DATE days since the epoch, TIME ms of the day, BYTES base64
  (ksqlDB's JSON encodings of those types).
- DELIMITED: the value is split on the delimiter; field i casts to column i; a value with the
  wrong number of fields is all NULL; an empty field is NULL. No CSV quoting.
- KAFKA: text is the UTF-8 bytes, BYTES the bytes, INT/BIGINT/DOUBLE 4/8-byte big-endian
  (as ksqlDB writes them), decoded with numpy over the batch before DuckDB sees it.
- AVRO: decoded per batch by `avro.AvroValues` into a struct column the view unpacks.

The key column is decoded from the record key by the key format the same way. ROWTIME is the
record timestamp (or the TIMESTAMP column's value), ROWPARTITION and ROWOFFSET the record's
partition and offset. Bytes that do not decode give NULL columns for that row; the query goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
from streamhouse.broker.metadata import DeclaredColumn, SourceDeclaration

from .declaration import Reading, arrow_types

KAFKA_NUMBERS = {"INTEGER": (4, ">i4", pa.int32()), "BIGINT": (8, ">i8", pa.int64()),
                 "DOUBLE": (8, ">f8", pa.float64())}  # fmt: skip
KAFKA_KEY = "__sh_kafka_key"
KAFKA_VALUE = "__sh_kafka_value"
AVRO_VALUE = "__sh_avro_value"
JSON_VALUE = "__sh_json"
FIELDS = "__sh_fields"
NESTED = ("[", "STRUCT", "MAP", "UNION")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def big_endian(values: pa.Array, width: int, dtype: str, arrow: pa.DataType) -> pa.Array:
    """Fixed-width big-endian numbers from a binary column; other lengths and nulls are NULL."""
    binary = values.cast(pa.large_binary())
    n = len(binary)
    offsets = np.frombuffer(binary.buffers()[1], np.int64, n + 1, binary.offset * 8)
    data_buffer = binary.buffers()[2]
    data = (
        np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    )
    fits = (np.diff(offsets) == width) & ~np.asarray(binary.is_null())
    starts = offsets[:-1][fits]
    gathered = data[starts[:, None] + np.arange(width)] if len(starts) else np.empty((0, width))
    numbers = np.zeros(n, dtype=dtype[1:])
    numbers[fits] = gathered.astype(np.uint8).copy().view(dtype).ravel()
    return pa.array(numbers, type=arrow, mask=~fits)


def _is_nested(type_text: str) -> bool:
    return type_text.endswith("]") or type_text.startswith(NESTED)


def _from_text(text: str, type_text: str) -> str:
    """`text` (a VARCHAR expression) as the declared type; NULL when it does not convert."""
    if type_text == "BLOB":
        return f"TRY(from_base64({text}))"
    if type_text == "TIMESTAMP":
        return f"COALESCE(TRY(epoch_ms(TRY_CAST({text} AS BIGINT))), TRY_CAST({text} AS TIMESTAMP))"
    if type_text == "DATE":
        return (
            f"COALESCE(TRY(DATE '1970-01-01' + TRY_CAST({text} AS INTEGER)), "
            f"TRY_CAST({text} AS DATE))"
        )
    if type_text == "TIME":
        return (
            f"COALESCE(TRY(TIME '00:00:00' + to_milliseconds(TRY_CAST({text} AS BIGINT))), "
            f"TRY_CAST({text} AS TIME))"
        )
    return f"TRY_CAST({text} AS {type_text})"


def _from_json(json: str, type_text: str) -> str:
    """A JSON expression as the declared type."""
    if _is_nested(type_text):
        return f"TRY_CAST({json} AS {type_text})"
    return _from_text(f"({json} ->> '$')", type_text)


def _json_field(name: str) -> str:
    """The field `name` of the parsed value: exact name first, else ignoring case."""
    exact = f"json_extract({JSON_VALUE}, {literal(name)})"
    matches = f"list_filter(json_keys({JSON_VALUE}), lambda k: lower(k) = {literal(name.lower())})"
    return f"COALESCE({exact}, json_extract({JSON_VALUE}, {matches}[1]))"


def _value_expression(reading: Reading, index: int, column: DeclaredColumn) -> str:
    fmt = reading.value_format
    if fmt == "JSON":
        return _from_json(_json_field(column.name), column.type)
    if fmt == "DELIMITED":
        expected = len(reading.values)
        field = f"NULLIF({FIELDS}[{index + 1}], '')"
        text_type = column.type if column.type != "BLOB" else "BLOB"
        cast = _from_text(field, text_type) if column.type != "VARCHAR" else field
        return f"CASE WHEN len({FIELDS}) = {expected} THEN {cast} END"
    if fmt == "KAFKA":
        if column.type in KAFKA_NUMBERS:
            return KAFKA_VALUE
        return '"value"' if column.type == "BLOB" else 'TRY(decode("value"))'
    return f"{AVRO_VALUE}.{quote(_avro_names(reading)[index])}"


def _avro_names(reading: Reading) -> list[str]:
    from .avro import field_names

    return field_names(reading.values)


def _key_expression(reading: Reading, column: DeclaredColumn) -> str:
    fmt = reading.key_format
    if fmt == "KAFKA":
        if column.type in KAFKA_NUMBERS:
            return KAFKA_KEY
        return "key" if column.type == "BLOB" else "TRY(decode(key))"
    text = "TRY(decode(key))"
    if fmt == "JSON":
        return _from_json(f"TRY_CAST({text} AS JSON)", column.type)
    if column.type == "VARCHAR":
        return f"NULLIF({text}, '')"
    return _from_text(f"NULLIF({text}, '')", column.type)


def view_sql(reading: Reading, view: str, raw: str) -> str:
    """CREATE VIEW `view` with the declared columns and pseudo columns over scan rows `raw`."""
    expressions: dict[str, str] = {}
    for i, column in enumerate(reading.values):
        expressions[column.name] = _value_expression(reading, i, column)
    if reading.key is not None:
        expressions[reading.key.name] = _key_expression(reading, reading.key)
    selected = [f"{expressions[c.name]} AS {quote(c.name)}" for c in reading.source.columns]
    if reading.timestamp is None:
        rowtime = '"timestamp"'  # epoch ms in the record, TIMESTAMP_MS here
    elif reading.timestamp.type == "BIGINT":
        rowtime = (
            f"CAST(TRY(make_timestamp_ms({expressions[reading.timestamp.name]})) AS TIMESTAMP_MS)"
        )
    else:
        rowtime = f"CAST({expressions[reading.timestamp.name]} AS TIMESTAMP_MS)"
    selected += [f"{rowtime} AS ROWTIME", "partition AS ROWPARTITION", '"offset" AS ROWOFFSET']
    inner = f"SELECT * FROM {quote(raw)}"
    if reading.value_format == "JSON":
        inner = (
            f'SELECT *, TRY_CAST(TRY(decode("value")) AS JSON) AS {JSON_VALUE} FROM {quote(raw)}'
        )
    if reading.value_format == "DELIMITED":
        split = f'string_split(TRY(decode("value")), {literal(reading.delimiter)})'
        inner = f"SELECT *, {split} AS {FIELDS} FROM {quote(raw)}"
    return f"CREATE TEMP VIEW {quote(view)} AS SELECT {', '.join(selected)} FROM ({inner})"


class BatchDecoder:
    """Adds the columns numpy or fastavro decode (KAFKA numbers, AVRO) to each scan batch."""

    def __init__(self, reading: Reading) -> None:
        self.columns: list[tuple[pa.Field, Callable[[pa.RecordBatch], pa.Array]]] = []
        key = reading.key
        if key is not None and reading.key_format == "KAFKA" and key.type in KAFKA_NUMBERS:
            self._big_endian(KAFKA_KEY, "key", key.type)
        if reading.value_format == "KAFKA" and reading.values[0].type in KAFKA_NUMBERS:
            self._big_endian(KAFKA_VALUE, "value", reading.values[0].type)
        if reading.value_format == "AVRO":
            from .avro import AvroValues

            avro = AvroValues(reading.values, arrow_types(reading.values))
            field = pa.field(AVRO_VALUE, avro.type)
            self.columns.append((field, lambda b: avro.decode(b.column("value"))))

    def _big_endian(self, name: str, source: str, type_text: str) -> None:
        width, dtype, arrow = KAFKA_NUMBERS[type_text]
        decode = lambda b: big_endian(b.column(source), width, dtype, arrow)  # noqa: E731
        self.columns.append((pa.field(name, arrow), decode))

    def reader(self, data: pa.RecordBatchReader | pa.Table) -> pa.RecordBatchReader:
        """`data` with the decoded columns added, batch by batch as DuckDB pulls them."""
        reader = data if isinstance(data, pa.RecordBatchReader) else data.to_reader()
        schema = pa.schema(list(reader.schema) + [f for f, _ in self.columns])

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                added = [make(batch) for _, make in self.columns]
                yield pa.RecordBatch.from_arrays(list(batch.columns) + added, schema=schema)

        return pa.RecordBatchReader.from_batches(schema, batches())


def register_source(
    session, relation: str, data: pa.RecordBatchReader | pa.Table, source: SourceDeclaration
) -> None:
    """Makes the scan `data` of `source`'s topic queryable as `relation`, typed."""
    reading = Reading.of(source)
    raw = f"{relation}__raw"
    decoder = BatchDecoder(reading)
    if decoder.columns:
        data = decoder.reader(data)
    session.register(raw, data)
    session.execute(view_sql(reading, relation, raw))
