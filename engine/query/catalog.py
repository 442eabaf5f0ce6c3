"""The names a query may read, snapshotted once per statement from the topic metadata.

Every topic reads as the same record columns (the view `DuckDBSession.register_topic` makes);
declared schemas (CREATE STREAM/TABLE) come later. Internal topics (`__consumer_offsets`, ...)
are not queryable. Topic names match exactly, else case-insensitively when that is unambiguous,
since unquoted SQL identifiers are usually typed in any case.
"""

from __future__ import annotations

from collections.abc import Iterable

RECORD_COLUMNS = (
    "partition",
    "offset",
    "timestamp",
    "key",
    "value",
    "headers",
    "key_bytes",
    "value_bytes",
)


class TopicCatalog:
    def __init__(self, topics: Iterable[str]) -> None:
        self.names = sorted(topics)
        self._by_lower: dict[str, list[str]] = {}
        for name in self.names:
            self._by_lower.setdefault(name.lower(), []).append(name)

    def resolve(self, name: str) -> str | None:
        """The topic `name` refers to, or None."""
        if name in self.names:
            return name
        matches = self._by_lower.get(name.lower(), [])
        return matches[0] if len(matches) == 1 else None

    def columns(self, name: str) -> tuple[str, ...] | None:
        """The analysis catalog: the columns of `name`, or None when there is no such topic."""
        return RECORD_COLUMNS if self.resolve(name) is not None else None
