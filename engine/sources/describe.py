"""DESCRIBE for topics and declared streams/tables.

`DESCRIBE topic` is the per-partition table (offsets, records, bytes, segments). Everything
else -- a declared source, or `EXTENDED` -- is one row layout, `section, name, type, detail`:

- `source`: what the declaration says (kind, topic, key_format, value_format, timestamp);
- `column`: each declared column with its type, `detail` KEY / PRIMARY KEY; then the pseudo
  columns ROWTIME, ROWPARTITION, ROWOFFSET (`detail` 'pseudo');
- `partition`: one row per partition of the topic, `name` its number and `detail`
  `log_start_offset=.. next_offset=.. record_count=.. size_bytes=.. segment_count=..`;
- `config` (EXTENDED): the topic's configs (retention.ms, retention.bytes, ...);
- `inferred` (EXTENDED, topics only): the fields of the JSON objects among up to 1,000 recent
  values, with the types DuckDB infers (`json_group_structure`).
"""

from __future__ import annotations

import asyncio
import json
import math

from streamhouse.engine.duckdb_adapter import DuckDBSession, DuckDBSettings
from streamhouse.engine.query.results import SqlResult, from_rows
from streamhouse.engine.scan import ScanSpec, open_scan

from .declaration import PSEUDO_COLUMNS, Reading

PARTITION_COLUMNS = [
    ("partition", "INTEGER"),
    ("log_start_offset", "BIGINT"),
    ("next_offset", "BIGINT"),
    ("committed_offset", "BIGINT"),
    ("record_count", "BIGINT"),
    ("size_bytes", "BIGINT"),
    ("segment_count", "INTEGER"),
]
SECTION_COLUMNS = [
    ("section", "VARCHAR"),
    ("name", "VARCHAR"),
    ("type", "VARCHAR"),
    ("detail", "VARCHAR"),
]
SAMPLE_RECORDS = 1000
PSEUDO_TYPES = {"ROWTIME": "TIMESTAMP", "ROWPARTITION": "INTEGER", "ROWOFFSET": "BIGINT"}
_INFERRED_TYPES = {"UBIGINT": "BIGINT", "NULL": "JSON"}


def partition_table(described) -> SqlResult:
    return from_rows(PARTITION_COLUMNS, [_partition_values(p) for p in described.partitions])


def _partition_values(p) -> list:
    records = max(0, p.next_offset - p.log_start_offset)
    return [p.partition, p.log_start_offset, p.next_offset, p.committed_offset, records,
            p.size_bytes, p.segment_count]  # fmt: skip


def _partition_rows(described) -> list[list]:
    rows = []
    for p in described.partitions:
        values = dict(zip((n for n, _ in PARTITION_COLUMNS), _partition_values(p), strict=True))
        detail = " ".join(f"{k}={v}" for k, v in values.items() if k != "partition")
        rows.append(["partition", str(p.partition), None, detail])
    return rows


def _source_rows(source) -> list[list]:
    reading = Reading.of(source)
    rows = [
        ["source", "kind", None, source.kind.upper()],
        ["source", "topic", None, source.topic],
        ["source", "key_format", None, reading.key_format],
        ["source", "value_format", None, reading.value_format],
    ]
    if reading.timestamp is not None:
        rows.append(["source", "timestamp", None, reading.timestamp.name])
    if reading.value_format == "DELIMITED":
        rows.append(["source", "value_delimiter", None, reading.delimiter])
    keys = {"key": "KEY", "primary": "PRIMARY KEY"}
    rows += [["column", c.name, c.type, keys.get(c.key or "", "")] for c in source.columns]
    rows += [["column", name, PSEUDO_TYPES[name], "pseudo"] for name in PSEUDO_COLUMNS]
    return rows


def _config_rows(topic) -> list[list]:
    configs = topic.config.to_kafka_dict()
    return [["config", name, None, str(value)] for name, value in sorted(configs.items())]


def _sql_type(structure) -> str:
    """A `json_structure` description as DuckDB type text."""
    if isinstance(structure, dict):
        fields = ", ".join(f'"{k}" {_sql_type(v)}' for k, v in structure.items())
        return f"STRUCT({fields})"
    if isinstance(structure, list):
        return f"{_sql_type(structure[0]) if structure else 'JSON'}[]"
    return _INFERRED_TYPES.get(str(structure), str(structure))


async def _sample(manager, described, settings: DuckDBSettings) -> tuple[int, int, dict]:
    """(sampled, JSON objects, merged structure) over the latest values of every partition."""
    per_partition = math.ceil(SAMPLE_RECORDS / max(1, len(described.partitions)))
    scans = []
    for p in described.partitions:
        start = max(p.log_start_offset, p.next_offset - per_partition)
        spec = ScanSpec(
            topic=described.topic.name, partitions=frozenset({p.partition}), offset_min=start
        )
        scans.append(await open_scan(manager, spec))
    union = " UNION ALL ".join(f'SELECT "value" FROM sample_{i}' for i in range(len(scans)))
    objects = "FROM sampled WHERE json_type(j) = 'OBJECT'"
    sql = (
        "WITH sampled AS MATERIALIZED "
        f'(SELECT TRY_CAST(TRY(decode("value")) AS JSON) AS j FROM ({union})) '
        f"SELECT (SELECT count(*) FROM sampled), (SELECT count(*) {objects}), "
        f"(SELECT json_group_structure(j) {objects})"
    )

    def run():
        with DuckDBSession(settings) as session:
            for i, scan in enumerate(scans):
                session.register(f"sample_{i}", scan.reader())
            return session.execute(sql).table.to_pylist()[0]

    row = await asyncio.to_thread(run)
    values = list(row.values())
    structure = json.loads(values[2]) if values[2] else {}
    return values[0], values[1], structure if isinstance(structure, dict) else {}


async def _inferred_rows(manager, described, settings: DuckDBSettings) -> list[list]:
    if not described.partitions:
        return []
    sampled, objects, structure = await _sample(manager, described, settings)
    if not structure:
        return [["inferred", None, None, f"no JSON objects among {sampled} sampled values"]]
    detail = f"from {objects} JSON objects among {sampled} sampled values"
    return [["inferred", k, _sql_type(v), detail] for k, v in structure.items()]


async def describe(broker, topic: str, source, extended: bool, settings: DuckDBSettings):
    """DESCRIBE of `topic`, typed by the declaration `source` when there is one."""
    described = await broker.describe_topic(topic)
    if source is None and not extended:
        return partition_table(described)
    rows = _source_rows(source) if source is not None else []
    rows += _partition_rows(described)
    if extended:
        rows += _config_rows(described.topic)
        if source is None:
            rows += await _inferred_rows(broker.manager, described, settings)
    return from_rows(SECTION_COLUMNS, rows)
