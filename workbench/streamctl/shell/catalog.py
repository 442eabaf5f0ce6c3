"""What the shell knows about the server's names, cached between statements for completion.

Listing topics, streams and tables costs three statements, so it happens when the shell
starts, after a CREATE or DROP, and on `\\refresh`, not on every Tab. Column names are looked
up lazily per source: a topic's are the fixed record columns; a stream's or table's come
from `DESCRIBE name`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamhouse.workbench.streamctl.shell.client import ServerUnreachable, SqlClient, SqlFailed

# The record columns every topic reads as (engine/query/catalog.py RECORD_COLUMNS), kept here
# so the shell does not import the engine and DuckDB just to complete names.
TOPIC_COLUMNS = (
    "partition",
    "offset",
    "timestamp",
    "key",
    "value",
    "headers",
    "key_bytes",
    "value_bytes",
)

# The column of a DESCRIBE answer that names a stream's or table's columns.
_NAME_COLUMNS = ("name", "column", "column_name", "field")


@dataclass
class Catalog:
    client: SqlClient
    topics: list[str] = field(default_factory=list)
    streams: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    _columns: dict[str, list[str]] = field(default_factory=dict)

    async def refresh(self) -> None:
        """Lists topics, streams and tables again; raises ServerUnreachable if it cannot."""
        self.topics = _names(await self.client.run("SHOW TOPICS"))
        self.streams = await self._declared("SHOW STREAMS")
        self.tables = await self._declared("SHOW TABLES")
        self._columns.clear()

    async def _declared(self, statement: str) -> list[str]:
        try:
            return _names(await self.client.run(statement))
        except SqlFailed:
            return []  # an older server that cannot declare streams or tables

    def kinds(self) -> dict[str, str]:
        """Every known name -> "topic", "stream" or "table" (a declared source wins)."""
        found = {name: "topic" for name in self.topics}
        found.update({name: "stream" for name in self.streams})
        found.update({name: "table" for name in self.tables})
        return found

    def resolve(self, word: str) -> str | None:
        """The catalog name `word` refers to (names are case-insensitive), or None."""
        lowered = word.lower()
        return next((name for name in self.kinds() if name.lower() == lowered), None)

    def cached_columns(self, name: str) -> list[str]:
        if self.kinds().get(name) == "topic":
            return list(TOPIC_COLUMNS)
        return self._columns.get(name, [])

    async def columns_of(self, name: str) -> list[str]:
        """The column names of a source; empty when they cannot be learned right now."""
        if self.kinds().get(name) == "topic" or name in self._columns:
            return self.cached_columns(name)
        try:
            described = await self.client.run(f'DESCRIBE "{name}"')
        except (ServerUnreachable, SqlFailed):
            return []
        self._columns[name] = _described_columns(described)
        return self._columns[name]


def _names(document: dict[str, Any]) -> list[str]:
    return [str(v) for v in _column(document, ("name",))]


def _column(document: dict[str, Any], candidates: tuple[str, ...]) -> list[Any]:
    names = [c["name"].lower() for c in document.get("columns", [])]
    for candidate in candidates:
        if candidate in names:
            at = names.index(candidate)
            return [row[at] for row in document.get("rows", []) if row[at] is not None]
    return []


def _described_columns(document: dict[str, Any]) -> list[str]:
    """Column names from DESCRIBE; a sectioned answer lists them in its "column" rows."""
    names = [c["name"].lower() for c in document.get("columns", [])]
    if "section" in names and "name" in names:
        section, name = names.index("section"), names.index("name")
        return [str(r[name]) for r in document.get("rows", []) if r[section] == "column"]
    return [str(v) for v in _column(document, _NAME_COLUMNS)]
