"""Fetched batches to Arrow, and Arrow to ConsumerRecords.

A fetch may begin with records before the requested offset (batches are returned whole), so
the decoded columns are cut at the position with one binary search over the offset column.
``records_from_table`` is the only per-record step, and only for callers who asked for
objects (``poll``); ``poll_arrow`` hands the columns over as they are.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from streamhouse.broker.client.models import ConsumerRecord
from streamhouse.broker.records import batches_to_arrow, parse_header
from streamhouse.broker.records.arrow import ARROW_SCHEMA

CONSUMER_SCHEMA = pa.schema([pa.field("topic", pa.string(), nullable=False), *ARROW_SCHEMA])


def decode_fetched(
    topic: str, partition: int, batches: Sequence[bytes], position: int
) -> tuple[pa.Table, int]:
    """Decodes one partition's fetched batches from ``position`` on.

    Returns:
        The records at or after ``position`` (``CONSUMER_SCHEMA``) and the position after the
        last batch, which moves past control batches and compacted gaps too.
    """
    if not batches:
        return CONSUMER_SCHEMA.empty_table(), position
    decoded = batches_to_arrow(batches, partition)
    offsets = decoded.column("offset").to_numpy()
    first = int(np.searchsorted(offsets, position, side="left"))
    if first:
        decoded = decoded.slice(first)
    table = pa.Table.from_batches([decoded]).add_column(
        0,
        CONSUMER_SCHEMA.field("topic"),
        [pa.repeat(pa.scalar(topic, pa.string()), decoded.num_rows)],
    )
    last = parse_header(batches[-1]).last_offset
    return table, max(position, last + 1)


def records_from_table(table: pa.Table) -> list[ConsumerRecord]:
    """One ConsumerRecord per row (headers as tuples of ``(key, value)``)."""
    n = table.num_rows
    if n == 0:
        return []
    columns = [
        table.column("topic").to_pylist(),
        table.column("partition").to_pylist(),
        table.column("offset").to_pylist(),
        pc.cast(table.column("timestamp"), pa.int64()).to_pylist(),
        table.column("key").to_pylist(),
        table.column("value").to_pylist(),
    ]
    header_column = table.column("headers")
    if pc.sum(pc.list_value_length(header_column)).as_py():
        headers = [tuple((h["key"], h["value"]) for h in row) for row in header_column.to_pylist()]
    else:
        headers = itertools.repeat((), n)
    return list(map(ConsumerRecord, *columns, headers))
