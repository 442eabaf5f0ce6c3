"""EXPLAIN: what each table reference will scan, so users can see their pushdown work."""

from __future__ import annotations

from datetime import UTC, datetime

from streamhouse.sql import ScanSpec

from .results import SqlResult, from_rows

EXPLAIN_COLUMNS = [
    ("ref", "INTEGER"),
    ("topic", "VARCHAR"),
    ("alias", "VARCHAR"),
    ("pushdown", "VARCHAR"),
    ("duckdb_sql", "VARCHAR"),
]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _range(lo: int | None, hi: int | None, show=str) -> str:
    return f"[{'-inf' if lo is None else show(lo)}, {'+inf' if hi is None else show(hi)})"


def describe_pushdown(spec: ScanSpec) -> str:
    """The scan's bounds in words; 'full scan' when the WHERE clause prunes nothing."""
    parts = []
    if spec.partitions is not None:
        parts.append(f"partitions {sorted(spec.partitions)}")
    if spec.offset_min is not None or spec.offset_max is not None:
        parts.append(f"offsets {_range(spec.offset_min, spec.offset_max)}")
    if spec.time_min_ms is not None or spec.time_max_ms is not None:
        parts.append(f"timestamps {_range(spec.time_min_ms, spec.time_max_ms, _iso)}")
    if spec.keys is not None:
        keys = sorted(k.decode(errors="replace") for k in spec.keys)
        parts.append(f"keys {keys}")
    if spec.as_of_offset is not None:
        parts.append(f"as of offset {spec.as_of_offset}")
    if spec.as_of_timestamp_ms is not None:
        parts.append(f"as of {_iso(spec.as_of_timestamp_ms)}")
    return "; ".join(parts) or "full scan"


def explain(scans: tuple[ScanSpec, ...], topics: list[str], duckdb_sql: str) -> SqlResult:
    rows = [
        [spec.ref, topic, spec.alias, describe_pushdown(spec), duckdb_sql]
        for spec, topic in zip(scans, topics, strict=True)
    ]
    return from_rows(EXPLAIN_COLUMNS, rows)
