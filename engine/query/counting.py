"""COUNT(*) from a scan's plan alone: the records between offsets, no byte read.

``sql.count_pushdown`` decides when a query is a COUNT(*) whose predicates the scan applies
exactly by offset range; the opened scan's pieces are then exactly the records that match
(offsets are dense), so their lengths add up to the answer DuckDB would give after reading
them all. Nothing is read: every planned segment counts as skipped in the stats.
"""

from __future__ import annotations

import dataclasses

from streamhouse.broker.metadata import SourceDeclaration
from streamhouse.sql.count_pushdown import counted_from_offsets
from streamhouse.sql.statements import QueryStatement

from .catalog import TOPIC_RELATION, source_relation
from .results import SqlResult, from_rows
from .running import PreparedQuery


def _counted_name(statement: QueryStatement, source: SourceDeclaration | None) -> str | None:
    relation = TOPIC_RELATION if source is None else source_relation(source)
    return counted_from_offsets(statement, relation.fields)


def counts_from_offsets(statement: QueryStatement, source: SourceDeclaration | None) -> bool:
    """Whether a one-table query over a topic (or `source`) is a COUNT(*) offsets answer."""
    return _counted_name(statement, source) is not None


def count_from_offsets(statement: QueryStatement, prepared: PreparedQuery) -> SqlResult | None:
    """The answer of a COUNT(*) that offsets alone answer, else None (run the query)."""
    if len(prepared.scans) != 1:
        return None
    name = _counted_name(statement, prepared.sources[0] if prepared.sources else None)
    if name is None:
        return None
    (scan,) = prepared.scans
    count = sum(piece.end - piece.start for piece in scan.pieces)
    scan.stats.segments_skipped += sum(1 for piece in scan.pieces if piece.segment is not None)
    result = from_rows([(name, "BIGINT")], [[count]])
    return dataclasses.replace(result, stats=prepared.stats())
