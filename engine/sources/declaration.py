"""CREATE STREAM/TABLE checked the way ksqlDB checks it, into a declaration the store keeps.

Everything a later SELECT relies on is decided here, once: formats are known and fit the
columns, the key column suits its key format, the timestamp column has a usable type, and each
column type is DuckDB's canonical spelling (so the typed view never meets a type it cannot
cast to). Messages follow ksqlDB's where it has one, so its users recognise them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from streamhouse.broker.metadata import DeclaredColumn, SourceDeclaration
from streamhouse.sql import SqlError
from streamhouse.sql.errors import did_you_mean
from streamhouse.sql.statements import CreateSourceStatement

VALUE_FORMATS = ("JSON", "DELIMITED", "KAFKA", "AVRO")
KEY_FORMATS = ("KAFKA", "JSON", "DELIMITED", "NONE")
PSEUDO_COLUMNS = ("ROWTIME", "ROWPARTITION", "ROWOFFSET")
# What ksqlDB's KAFKA format can hold: fixed-width big-endian numbers, UTF-8 text, raw bytes.
KAFKA_TYPES = ("INTEGER", "BIGINT", "DOUBLE", "VARCHAR", "BLOB")
TIMESTAMP_COLUMN_TYPES = ("BIGINT", "TIMESTAMP")
KNOWN_PROPERTIES = (
    "kafka_topic",
    "value_format",
    "key_format",
    "format",
    "timestamp",
    "timestamp_format",
    "partitions",
    "replicas",
    "value_delimiter",
)
MAX_NAME = 255
_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# ksqlDB type names DuckDB spells differently.
_TYPE_ALIASES = {"BYTES": "BLOB", "STRING": "VARCHAR"}


@dataclass(frozen=True)
class Reading:
    """How to read a declaration's records: the parts of it the decoders need, by role."""

    source: SourceDeclaration
    key: DeclaredColumn | None
    values: tuple[DeclaredColumn, ...]
    key_format: str
    value_format: str
    timestamp: DeclaredColumn | None
    delimiter: str

    @classmethod
    def of(cls, source: SourceDeclaration) -> Reading:
        props = source.properties
        keys = [c for c in source.columns if c.key]
        by_name = {c.name.lower(): c for c in source.columns}
        timestamp = props.get("timestamp")
        return cls(
            source=source,
            key=keys[0] if keys else None,
            values=tuple(c for c in source.columns if not c.key),
            key_format=str(props.get("key_format", "KAFKA")),
            value_format=str(props["value_format"]),
            timestamp=by_name[str(timestamp).lower()] if timestamp is not None else None,
            delimiter=str(props.get("value_delimiter", ",")),
        )


def _error(message: str) -> SqlError:
    return SqlError(message)


def _canonical_types(columns) -> list[pa.Field]:
    """Each column's type as DuckDB spells it, with its Arrow type (for AVRO)."""
    if not columns:
        return []
    select = ", ".join(
        f"NULL::{_TYPE_ALIASES.get(c.type.upper(), c.type)} AS c{i}" for i, c in enumerate(columns)
    )
    with duckdb.connect(":memory:", config={"enable_external_access": False}) as con:
        try:
            relation = con.sql(f"SELECT {select}")
        except duckdb.Error as exc:
            raise _error(f"Unknown column type: {str(exc).splitlines()[0]}") from None
        schema = relation.arrow().schema
        types = [str(t) for t in relation.types]
    return [pa.field(t, f.type) for t, f in zip(types, schema, strict=True)]


def arrow_types(columns) -> list[pa.DataType]:
    return [f.type for f in _canonical_types(columns)]


def _check_name(name: str, what: str) -> None:
    if not name or len(name) > MAX_NAME:
        raise _error(f"A {what} name must be 1 to {MAX_NAME} characters, got {len(name)}")
    if ":" in name or any(ord(ch) < 32 for ch in name):
        raise _error(f"A {what} name may not contain ':' or control characters: {name[:40]!r}")


def _property(props: dict, name: str, kind: type = str):
    value = props.get(name)
    if value is not None and not isinstance(value, kind):
        raise _error(f"Property {name.upper()} must be a {kind.__name__}, got {value!r}")
    return value


def _format(props: dict, name: str, allowed: tuple[str, ...], default: str | None) -> str:
    value = _property(props, name) or _property(props, "format") or default
    if value is None:
        raise _error(f'Missing required property "{name.upper()}" which has no default value.')
    upper = value.upper()
    if upper not in allowed:
        raise _error(f"Unknown {name} {value!r}. Supported: {', '.join(allowed)}.")
    return upper


def _check_properties(props: dict) -> None:
    for name in props:
        if name not in KNOWN_PROPERTIES:
            raise _error(
                f"Unknown property {name.upper()}."
                + did_you_mean(name, KNOWN_PROPERTIES)
                + f" Known: {', '.join(p.upper() for p in KNOWN_PROPERTIES)}."
            )
    if props.get("timestamp_format") is not None:
        raise _error(
            "TIMESTAMP_FORMAT is not supported yet: declare the timestamp column as BIGINT "
            "(epoch milliseconds) or TIMESTAMP"
        )


def _check_keys(kind: str, columns: list[DeclaredColumn], key_format: str) -> None:
    keys = [c for c in columns if c.key]
    for column in keys:
        if kind == "stream" and column.key == "primary":
            raise _error(
                f"Column `{column.name}` is a 'PRIMARY KEY' column: please use 'KEY' for streams."
            )
        if kind == "table" and column.key == "key":
            raise _error(
                f"Column `{column.name}` is a 'KEY' column: please use 'PRIMARY KEY' for tables."
            )
    if kind == "table" and not keys:
        raise _error("Tables require a PRIMARY KEY. Please define the PRIMARY KEY.")
    if len(keys) > 1:
        raise _error(f"Only one key column is supported, got {[c.name for c in keys]}")
    if keys and key_format == "NONE":
        raise _error(f"KEY_FORMAT 'NONE' cannot hold the key column `{keys[0].name}`")
    if keys and key_format == "KAFKA" and keys[0].type not in KAFKA_TYPES:
        raise _error(
            f"The 'KAFKA' key format does not support type {keys[0].type} (key `{keys[0].name}`). "
            f"Supported: {', '.join(KAFKA_TYPES)}."
        )


def _nested(arrow: pa.DataType) -> bool:
    return pa.types.is_nested(arrow)


def _check_values(values: list[DeclaredColumn], arrows: dict[str, pa.DataType], fmt: str) -> None:
    if fmt == "KAFKA":
        if len(values) != 1:
            got = ", ".join(f"`{c.name}` {c.type}" for c in values)
            raise _error(f"The 'KAFKA' format only supports a single field. Got: [{got}]")
        if values[0].type not in KAFKA_TYPES:
            raise _error(
                f"The 'KAFKA' format does not support type {values[0].type}. "
                f"Supported: {', '.join(KAFKA_TYPES)}."
            )
    if fmt == "DELIMITED":
        for column in values:
            if _nested(arrows[column.name]):
                raise _error(
                    f"The 'DELIMITED' format does not support type {column.type} "
                    f"(column `{column.name}`)"
                )
    if fmt == "AVRO":
        from .avro import check_avro_type  # fastavro is only needed by AVRO sources

        for column in values:
            check_avro_type(column.name, arrows[column.name])


def _check_timestamp(props: dict, columns: list[DeclaredColumn]) -> str | None:
    name = _property(props, "timestamp")
    if name is None:
        return None
    by_name = {c.name.lower(): c for c in columns}
    column = by_name.get(name.lower())
    if column is None:
        raise _error(
            f"The TIMESTAMP column set in the WITH clause does not exist in the schema: {name!r}."
            + did_you_mean(name, [c.name for c in columns])
        )
    if column.type not in TIMESTAMP_COLUMN_TYPES:
        raise _error(
            f"Timestamp column, `{column.name}`, should be BIGINT (epoch milliseconds) or "
            f"TIMESTAMP, not {column.type}."
        )
    return column.name


def _delimiter(props: dict, value_format: str) -> str | None:
    delimiter = _property(props, "value_delimiter")
    if delimiter is None:
        return None
    if value_format != "DELIMITED":
        raise _error("VALUE_DELIMITER is only for VALUE_FORMAT='DELIMITED'")
    named = {"TAB": "\t", "SPACE": " "}
    delimiter = named.get(delimiter.upper(), delimiter)
    if len(delimiter) != 1:
        raise _error(f"VALUE_DELIMITER must be one character, TAB or SPACE, got {delimiter!r}")
    return delimiter


def declare(statement: CreateSourceStatement, topic: str) -> SourceDeclaration:
    """The declaration `statement` makes, reading `topic` (already resolved by the caller).

    Raises:
        SqlError: anything ksqlDB would refuse, and the formats/types not supported here.
    """
    kind = statement.kind
    _check_name(statement.name, kind)
    props = dict(statement.properties)
    _check_properties(props)
    if not statement.columns:
        raise _error(
            f"CREATE {kind.upper()} needs its columns: there is no schema registry to infer "
            "them from"
        )
    seen: set[str] = set()
    for column in statement.columns:
        _check_name(column.name, "column")
        if column.name.upper() in PSEUDO_COLUMNS:
            raise _error(f"'{column.name}' is a reserved column name.")
        if column.name.lower() in seen:
            raise _error(f"Duplicate column name '{column.name}'")
        seen.add(column.name.lower())
    fields = _canonical_types(statement.columns)
    columns = [
        DeclaredColumn(c.name, f.name, c.key)
        for c, f in zip(statement.columns, fields, strict=True)
    ]
    arrows = {c.name: f.type for c, f in zip(columns, fields, strict=True)}
    value_format = _format(props, "value_format", VALUE_FORMATS, None)
    key_format = _property(props, "key_format") or _property(props, "format") or "KAFKA"
    key_format = _format({"key_format": key_format}, "key_format", KEY_FORMATS, "KAFKA")
    _check_keys(kind, columns, key_format)
    _check_values([c for c in columns if not c.key], arrows, value_format)
    properties: dict[str, str | int | float | bool] = {
        "key_format": key_format,
        "value_format": value_format,
    }
    timestamp = _check_timestamp(props, columns)
    if timestamp is not None:
        properties["timestamp"] = timestamp
    delimiter = _delimiter(props, value_format)
    if delimiter is not None:
        properties["value_delimiter"] = delimiter
    return SourceDeclaration(statement.name, kind, topic, tuple(columns), properties)


def wanted_partitions(statement: CreateSourceStatement) -> int | None:
    """PARTITIONS=n: create the topic with n partitions when it does not exist."""
    partitions = statement.properties.get("partitions")
    if partitions is None:
        return None
    if type(partitions) is not int or partitions < 1:
        raise _error(f"PARTITIONS must be a positive integer, got {partitions!r}")
    return partitions


def topic_property(statement: CreateSourceStatement) -> str:
    topic = statement.properties.get("kafka_topic")
    if topic is None:
        raise _error('Missing required property "KAFKA_TOPIC" which has no default value.')
    if not isinstance(topic, str) or not topic:
        raise _error(f"KAFKA_TOPIC must be a topic name, got {topic!r}")
    return topic


def avro_name(name: str) -> bool:
    return _AVRO_NAME.fullmatch(name) is not None
