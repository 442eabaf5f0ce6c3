"""EXPLAIN: the logical plan, with what each scan reads, so users can see their pushdown work.

One row per plan node, in pre-order (an operator before its inputs), the operator indented by
its depth as DuckDB and PostgreSQL print plans; each `Scan` row names the topic it reads and
the partitions, offsets, times and keys pushed into it (`full scan` when none). The last row
is the DuckDB SQL that runs over the scans.
"""

from __future__ import annotations

from datetime import UTC, datetime

from streamhouse.sql import ScanSpec
from streamhouse.sql.logical_plan import logical_plan
from streamhouse.sql.statements import QueryStatement

from .results import SqlResult, from_rows

EXPLAIN_COLUMNS = [("step", "INTEGER"), ("operator", "VARCHAR"), ("detail", "VARCHAR")]
INDENT = "  "


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


def explain(
    statement: QueryStatement, scans: tuple[ScanSpec, ...], topics: list[str], duckdb_sql: str
) -> SqlResult:
    by_ref = {spec.ref: (spec, topic) for spec, topic in zip(scans, topics, strict=True)}

    def scan_detail(ref: int) -> str:
        spec, topic = by_ref[ref]
        reads = "" if topic == spec.table else f"topic {topic}; "
        return reads + describe_pushdown(spec)

    rows = []
    for root in logical_plan(statement, scan_detail):
        for depth, node in root.walk():
            rows.append([len(rows), INDENT * depth + node.operator, node.detail])
    rows.append([len(rows), "DuckDB SQL", duckdb_sql])
    return from_rows(EXPLAIN_COLUMNS, rows)
