"""The columns a query reads are derived conservatively: any doubt reads every column."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest
from streamhouse.engine.scan import ScanSpec, open_scan
from streamhouse.engine.scan.projection import scan_columns
from streamhouse.sql import parse_statement

from ..conftest import PER_BATCH, SEGMENTS, T0


@pytest.mark.parametrize(
    ("sql", "columns"),
    [
        ("SELECT COUNT(*) FROM t", set()),
        ("SELECT json_extract_string(value, '$.k') AS k, COUNT(*) FROM t GROUP BY k", {"value"}),
        ("SELECT COUNT(1) FROM t WHERE timestamp > '2026-01-01'", {"timestamp"}),
        ("SELECT key_bytes FROM t", {"key"}),
        ("SELECT headers FROM t", {"headers"}),
        ("SELECT a.value FROM t a JOIN t b USING (key)", {"key", "value"}),
        ('SELECT "VALUE" FROM t', {"value"}),
        # Anything that reaches columns without naming them reads them all.
        ("SELECT * FROM t", None),
        ("SELECT x.* FROM t x", None),
        ("SELECT * EXCLUDE (value) FROM t", None),
        ("SELECT COUNT(*) FROM (SELECT * FROM t)", None),
        ("SELECT COLUMNS('v.*') FROM t", None),
        ("SELECT x FROM t x", None),
        ("SELECT to_json(t) FROM t", None),
        ("SELECT a.key FROM t a NATURAL JOIN t b", None),
    ],
)
def test_scan_columns(sql, columns):
    got = scan_columns(parse_statement(sql).ast)
    assert got == (None if columns is None else frozenset(columns))


async def test_a_projected_scan_returns_the_named_columns_and_nulls_for_the_rest(produced):
    spec = ScanSpec("events")
    full = [b async for b in (await open_scan(produced.manager, spec)).batches()]
    narrow_scan = await open_scan(produced.manager, spec, columns=frozenset({"key"}))
    narrow = [b async for b in narrow_scan.batches()]
    assert len(narrow) == len(full)
    for whole, part in zip(full, narrow, strict=True):
        assert part.schema == whole.schema
        for name in ("partition", "offset", "key"):
            assert part.column(name).equals(whole.column(name))
        committed = pc.max(part.column("offset")).as_py() < SEGMENTS * PER_BATCH
        if committed and produced.companions:  # read by column: value and timestamp were not
            assert part.column("value").null_count == part.num_rows
            assert pc.max(part.column("timestamp").cast("int64")).as_py() == 0
        else:  # decoded from a segment or memory: every column is there anyway
            assert part.column("value").equals(whole.column("value"))
            assert part.column("timestamp").equals(whole.column("timestamp"))


async def test_a_time_bound_reads_timestamps_even_when_the_query_names_none(produced):
    spec = ScanSpec("events", time_min_ms=T0 + 1000, time_max_ms=T0 + 1005)
    scan = await open_scan(produced.manager, spec, columns=frozenset())
    rows = [b async for b in scan.batches()]
    assert sum(b.num_rows for b in rows) == 5 * 3  # 5 records in each of the 3 partitions
