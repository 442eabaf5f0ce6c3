"""Which records a WHERE clause can possibly keep, per table reference, from its predicates on
the record columns `partition`, `offset`, `timestamp` and `key` -- or the columns a declared
stream maps to them (ROWPARTITION, ROWOFFSET, ROWTIME, its KEY column; see `extract`).

Pushdown only prunes: the engine reads fewer partitions/segments, and DuckDB re-applies the
whole WHERE, so results stay exact. Hence only conjuncts ANDed at the top level are used (an OR
or a NOT could keep records outside any one range), and anything not understood -- a non-literal
operand, an unparseable timestamp -- is simply not pushed down.

Ranges are half-open: `*_min` inclusive, `*_max` exclusive, so `offset <= 9` is offset_max 10.
Timestamps are epoch milliseconds UTC; ISO strings without a zone are read as UTC (the engine
runs DuckDB with TimeZone=UTC so that its own comparison agrees).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlglot import exp

# The log's own record fields a scan can prune by.
RECORD_FIELDS = ("partition", "offset", "timestamp", "key")

TIME_TYPES = {
    exp.DType.TIMESTAMP,
    exp.DType.TIMESTAMPTZ,
    exp.DType.TIMESTAMPNTZ,
    exp.DType.TIMESTAMPLTZ,
    exp.DType.TIMESTAMP_MS,
    exp.DType.TIMESTAMP_S,
    exp.DType.TIMESTAMP_NS,
    exp.DType.DATE,
    exp.DType.DATETIME,
}


@dataclass(frozen=True)
class Bounds:
    """What the conjuncts allow for one table reference; None means unconstrained."""

    partitions: frozenset[int] | None = None
    offset_min: int | None = None
    offset_max: int | None = None
    time_min_ms: int | None = None
    time_max_ms: int | None = None
    keys: frozenset[bytes] | None = None


def conjuncts(where: exp.Expr | None) -> list[exp.Expr]:
    """The top-level AND terms of a predicate, parentheses removed."""
    if where is None:
        return []
    node = where.unnest()
    if isinstance(node, exp.And):
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]


def iso_to_us(text: str) -> int | None:
    """Microseconds since the epoch for an ISO-8601 string (UTC when no zone), else None."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_epoch_ms(value: str | int) -> int | None:
    """An ISO string or epoch-ms integer as epoch ms (floored), else None."""
    if isinstance(value, int):
        return value
    us = iso_to_us(value)
    return None if us is None else us // 1000


def _literal(node: exp.Expr) -> str | int | None:
    """An int or string literal (also `-n`), or None for anything else."""
    node = node.unnest()
    if isinstance(node, exp.Neg):
        inner = _literal(node.this)
        return -inner if isinstance(inner, int) else None
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        return int(node.this) if node.this.isdigit() else None
    return None


def _time_us(node: exp.Expr) -> int | None:
    """A timestamp operand in microseconds: epoch-ms int, ISO string, or a cast of one."""
    node = node.unnest()
    if isinstance(node, exp.Cast) and node.to.this in TIME_TYPES:
        node = node.this
    value = _literal(node)
    if isinstance(value, int) and not isinstance(value, bool):
        return value * 1000
    if isinstance(value, str):
        return iso_to_us(value)
    return None


def _int(node: exp.Expr) -> int | None:
    value = _literal(node)
    return value if isinstance(value, int) else None


def _key(node: exp.Expr) -> bytes | None:
    value = _literal(node)
    return value.encode() if isinstance(value, str) else None


_FLIP = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE, exp.EQ: exp.EQ}


def _comparisons(term: exp.Expr, is_column) -> list[tuple[type, str, exp.Expr]]:
    """`term` as (operator, column name, operand) comparisons with the column on the left."""
    if isinstance(term, exp.Between) and not term.args.get("symmetric"):
        if is_column(term.this):
            name = term.this.name.lower()
            return [(exp.GTE, name, term.args["low"]), (exp.LTE, name, term.args["high"])]
        return []
    op = type(term)
    if op not in _FLIP:
        return []
    left, right = term.this.unnest(), term.expression.unnest()
    if is_column(left):
        return [(op, left.name.lower(), right)]
    if is_column(right):
        return [(_FLIP[op], right.name.lower(), left)]
    return []


def _range(bounds: Bounds, lo_field: str, hi_field: str, op: type, us: int, unit: int) -> Bounds:
    """Narrow a half-open [lo, hi) range in `unit` microseconds by `column op value`."""
    lo, hi = getattr(bounds, lo_field), getattr(bounds, hi_field)
    new_lo = new_hi = None
    if op in (exp.GT, exp.GTE, exp.EQ):
        new_lo = us // unit + 1 if op is exp.GT else math.ceil(us / unit)
    if op in (exp.LT, exp.LTE, exp.EQ):
        new_hi = math.ceil(us / unit) if op is exp.LT else us // unit + 1
    if new_lo is not None:
        lo = new_lo if lo is None else max(lo, new_lo)
    if new_hi is not None:
        hi = new_hi if hi is None else min(hi, new_hi)
    return replace(bounds, **{lo_field: lo, hi_field: hi})


def _intersect(old: frozenset | None, new: frozenset) -> frozenset:
    return new if old is None else old & new


def _apply(bounds: Bounds, op: type, column: str, operand: exp.Expr) -> Bounds:
    if column == "offset":
        value = _int(operand)
        if value is None:
            return bounds
        return _range(bounds, "offset_min", "offset_max", op, value, 1)
    if column == "timestamp":
        us = _time_us(operand)
        if us is None:
            return bounds
        return _range(bounds, "time_min_ms", "time_max_ms", op, us, 1000)
    if op is not exp.EQ:
        return bounds
    if column == "partition" and (value := _int(operand)) is not None:
        return replace(bounds, partitions=_intersect(bounds.partitions, frozenset({value})))
    if column == "key" and (key := _key(operand)) is not None:
        return replace(bounds, keys=_intersect(bounds.keys, frozenset({key})))
    return bounds


def _apply_in(bounds: Bounds, term: exp.In, is_column, fields: Mapping[str, str]) -> Bounds:
    column = term.this.unnest()
    if not is_column(column) or term.args.get("query") or not term.expressions:
        return bounds
    name = fields.get(column.name.lower())
    if name == "partition":
        values = [_int(e) for e in term.expressions]
        if None not in values:
            return replace(bounds, partitions=_intersect(bounds.partitions, frozenset(values)))
    if name == "key":
        keys = [_key(e) for e in term.expressions]
        if None not in keys:
            return replace(bounds, keys=_intersect(bounds.keys, frozenset(keys)))
    return bounds


def record_fields(columns: Iterable[str]) -> dict[str, str]:
    """The identity mapping for a topic's own record columns among `columns`."""
    lowered = (c.lower() for c in columns)
    return {c: c for c in lowered if c in RECORD_FIELDS}


def extract(where: exp.Expr | None, is_column, fields: Mapping[str, str] | None = None) -> Bounds:
    """Bounds implied by the top-level conjuncts of `where`.

    `is_column(node)` says whether a node is a Column of the table reference being scanned
    (the caller knows the aliases and whether unqualified columns are unambiguous). `fields`
    maps lower-cased column names to the record field they are (one of RECORD_FIELDS): a
    declared stream's ROWTIME is the record timestamp, its KEY column the record key. Columns
    not in it are never pushed down; None means a topic's own record columns.
    """
    if fields is None:
        fields = {f: f for f in RECORD_FIELDS}
    bounds = Bounds()
    for term in conjuncts(where):
        if isinstance(term, exp.In):
            bounds = _apply_in(bounds, term, is_column, fields)
            continue
        for op, column, operand in _comparisons(term, is_column):
            field = fields.get(column)
            if field is not None:
                bounds = _apply(bounds, op, field, operand)
    return bounds
