"""Declared streams and tables (CREATE STREAM/TABLE), in SQL both stores run.

A declaration is only a record of how to read a topic: nothing here checks the topic or the
column types (the engine does, before it calls :meth:`SourcesMixin.create_source`). Names are
unique ignoring case across streams and tables together, as in ksqlDB, so every lookup goes
through the lower-cased ``name_key``.
"""

from __future__ import annotations

import json

from streamhouse.broker.metadata.errors import (
    InvalidRequestError,
    SourceExistsError,
    UnknownSourceError,
)
from streamhouse.broker.metadata.models import DeclaredColumn, SourceDeclaration
from streamhouse.broker.metadata.sqlbase import DuplicateKeyError, Row, SqlStoreBase, Tx

SOURCE_KINDS = ("stream", "table")
MAX_SOURCE_NAME = 255
SOURCE_SELECT = "SELECT name, kind, topic, columns, properties, created_at FROM sources"


def name_key(name: str) -> str:
    return name.lower()


def _columns_json(columns: tuple[DeclaredColumn, ...]) -> str:
    return json.dumps([{"name": c.name, "type": c.type, "key": c.key} for c in columns])


def source_from_row(row: Row) -> SourceDeclaration:
    columns = tuple(DeclaredColumn(c["name"], c["type"], c["key"]) for c in json.loads(row[3]))
    return SourceDeclaration(row[0], row[1], row[2], columns, json.loads(row[4]), row[5])


def _check(source: object) -> SourceDeclaration:
    if not isinstance(source, SourceDeclaration):
        raise InvalidRequestError(f"expected a SourceDeclaration, got {type(source).__name__}")
    if not isinstance(source.name, str) or not 0 < len(source.name) <= MAX_SOURCE_NAME:
        raise InvalidRequestError(
            f"a stream or table name must be 1 to {MAX_SOURCE_NAME} characters, "
            f"got {str(source.name)[:40]!r}"
        )
    if source.kind not in SOURCE_KINDS:
        raise InvalidRequestError(f"kind must be 'stream' or 'table', got {source.kind!r}")
    if not isinstance(source.topic, str) or not source.topic:
        raise InvalidRequestError("a declared source needs the name of its topic")
    if not all(isinstance(c, DeclaredColumn) for c in source.columns):
        raise InvalidRequestError("columns must be DeclaredColumn values")
    try:
        json.dumps(source.properties)
    except (TypeError, ValueError):
        raise InvalidRequestError("properties must be JSON values") from None
    return source


class SourcesMixin(SqlStoreBase):
    """Create, read, list and delete declared streams and tables."""

    async def create_source(
        self, source: SourceDeclaration, *, if_not_exists: bool = False, or_replace: bool = False
    ) -> SourceDeclaration:
        """Stores a declaration; returns what is stored afterwards.

        With ``if_not_exists`` an existing declaration of that name is returned unchanged;
        with ``or_replace`` it is overwritten (whatever its kind: the caller checks that).

        Raises:
            InvalidRequestError: A malformed declaration.
            SourceExistsError: The name is taken, ignoring case, by a stream or a table.
        """
        _check(source)
        key = name_key(source.name)
        async with self._write() as tx:
            existing = await self._find(tx, key)
            if existing is not None and not or_replace:
                if if_not_exists:
                    return existing
                raise SourceExistsError(f"a {existing.kind} named {existing.name!r} already exists")
            values = (
                source.name,
                source.kind,
                source.topic,
                _columns_json(source.columns),
                json.dumps(source.properties, sort_keys=True),
            )
            if existing is not None:
                row = await tx.fetchone(
                    "UPDATE sources SET name = ?, kind = ?, topic = ?, columns = ?, "
                    "properties = ?, created_at = sh_now_ms() WHERE name_key = ? "
                    "RETURNING created_at",
                    *values,
                    key,
                )
            else:
                try:
                    row = await tx.fetchone(
                        "INSERT INTO sources (name, kind, topic, columns, properties, "
                        "created_at, name_key) VALUES (?, ?, ?, ?, ?, sh_now_ms(), ?) "
                        "RETURNING created_at",
                        *values,
                        key,
                    )
                except DuplicateKeyError:  # declared concurrently by another agent
                    raise SourceExistsError(f"{source.name!r} is already declared") from None
        assert row is not None
        return SourceDeclaration(
            source.name, source.kind, source.topic, source.columns, source.properties, row[0]
        )

    async def get_source(self, name: str) -> SourceDeclaration:
        """The declaration named ``name`` ignoring case.

        Raises:
            UnknownSourceError: None is declared under that name.
        """
        async with self._read() as tx:
            found = await self._find(tx, name_key(name))
        if found is None:
            raise UnknownSourceError(f"no stream or table named {name!r}")
        return found

    async def list_sources(self) -> list[SourceDeclaration]:
        """Every declaration, by name ignoring case."""
        async with self._read() as tx:
            rows = await tx.fetchall(f"{SOURCE_SELECT} ORDER BY name_key")
        return [source_from_row(row) for row in rows]

    async def delete_source(self, name: str) -> SourceDeclaration:
        """Forgets a declaration (never its topic); returns what was deleted.

        Raises:
            UnknownSourceError: None is declared under that name.
        """
        async with self._write() as tx:
            row = await tx.fetchone(
                "DELETE FROM sources WHERE name_key = ? "
                "RETURNING name, kind, topic, columns, properties, created_at",
                name_key(name),
            )
        if row is None:
            raise UnknownSourceError(f"no stream or table named {name!r}")
        return source_from_row(row)

    async def _find(self, tx: Tx, key: str) -> SourceDeclaration | None:
        row = await tx.fetchone(f"{SOURCE_SELECT} WHERE name_key = ?", key)
        return None if row is None else source_from_row(row)
