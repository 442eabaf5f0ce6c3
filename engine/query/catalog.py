"""The names a query may read, snapshotted once per statement from the metadata.

A name is a declared stream/table (CREATE STREAM/TABLE) or a topic. Declarations win: ksqlDB
users expect `SELECT ... FROM orders` to read the stream `orders` even when a topic is also
called `orders`; the topic's raw record columns stay reachable as `"topic:orders"` (Kafka topic
names cannot contain ':', so that name never means anything else). Declared names match
ignoring case; topic names exactly, else ignoring case when that is unambiguous, since unquoted
SQL identifiers are usually typed in any case. Internal topics (`__consumer_offsets`) are not
queryable.

Every topic reads as the same record columns (the view `DuckDBSession.register_topic` makes);
a declared source as its declared columns plus ROWTIME, ROWPARTITION and ROWOFFSET.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from streamhouse.broker.metadata import SourceDeclaration
from streamhouse.engine.sources import PSEUDO_COLUMNS, Reading
from streamhouse.sql import Relation
from streamhouse.sql.pushdown import record_fields

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
TOPIC_PREFIX = "topic:"
TOPIC_RELATION = Relation(RECORD_COLUMNS, record_fields(RECORD_COLUMNS))


@dataclass(frozen=True)
class Entry:
    """What a name read: the topic scanned, and the declaration typing it (None: raw topic)."""

    topic: str
    source: SourceDeclaration | None = None


def missing_topic(entry: Entry) -> str:
    kind = entry.source.kind if entry.source is not None else "topic"
    name = entry.source.name if entry.source is not None else entry.topic
    return f"The {kind} {name!r} reads topic {entry.topic!r}, which does not exist (any more)"


def source_relation(source: SourceDeclaration) -> Relation:
    """Columns of a declared source, and which of them push down into the scan."""
    reading = Reading.of(source)
    fields = {"rowpartition": "partition", "rowoffset": "offset"}
    if reading.timestamp is None:
        fields["rowtime"] = "timestamp"
    key = reading.key
    if key is not None and reading.key_format == "KAFKA" and key.type == "VARCHAR":
        fields[key.name.lower()] = "key"  # a string key's bytes are its UTF-8 text
    columns = tuple(c.name for c in source.columns) + PSEUDO_COLUMNS
    return Relation(columns, fields)


class TopicCatalog:
    def __init__(self, topics: Iterable[str], sources: Iterable[SourceDeclaration] = ()) -> None:
        self.topics = sorted(topics)
        self.sources = {s.name.lower(): s for s in sources}
        self.names = sorted({*self.topics, *(s.name for s in self.sources.values())})
        self._by_lower: dict[str, list[str]] = {}
        for name in self.topics:
            self._by_lower.setdefault(name.lower(), []).append(name)

    def topic(self, name: str) -> str | None:
        """The topic `name` refers to (ignoring declarations), or None."""
        if name in self.topics:
            return name
        matches = self._by_lower.get(name.lower(), [])
        return matches[0] if len(matches) == 1 else None

    def source(self, name: str) -> SourceDeclaration | None:
        return self.sources.get(name.lower())

    def entry(self, name: str) -> Entry | None:
        """What a table reference `name` reads, or None when it names nothing."""
        if name.lower().startswith(TOPIC_PREFIX):
            topic = self.topic(name[len(TOPIC_PREFIX) :])
            return None if topic is None else Entry(topic)
        source = self.source(name)
        if source is not None:
            return Entry(source.topic, source)
        topic = self.topic(name)
        return None if topic is None else Entry(topic)

    def resolve(self, name: str) -> str | None:
        """The topic a reference to `name` scans, or None."""
        entry = self.entry(name)
        return None if entry is None else entry.topic

    def columns(self, name: str) -> Relation | None:
        """The analysis catalog: what `name` reads as, or None when there is no such name."""
        entry = self.entry(name)
        if entry is None:
            return None
        return TOPIC_RELATION if entry.source is None else source_relation(entry.source)
