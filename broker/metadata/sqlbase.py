"""What both SQL stores share: the transaction interface, migrations and row locks.

The SQLite and PostgreSQL stores differ only in how a transaction is opened and how rows are
locked, so each supplies a :class:`Tx` (placeholders are ``?``; the PostgreSQL one rewrites
them) and :meth:`SqlStoreBase._for` (``FOR UPDATE``/``FOR SHARE`` on PostgreSQL, nothing on
SQLite, whose ``BEGIN IMMEDIATE`` already serialises every writer). Both schemas define
``sh_now_ms()``, the store's clock, so lease expiry never depends on an agent's own clock.

Locking rule (PostgreSQL, READ COMMITTED): anything that reads or changes a partition's lease,
offsets or segments first locks that partition's row in a statement of its own
(:meth:`SqlStoreBase._lock_partition`), and only then reads the lease or segments in a *new*
statement. A join read in the locking statement would return the lease as it was before the
wait, letting a fenced writer commit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, NoReturn, Protocol

from streamhouse.broker.metadata import validate
from streamhouse.broker.metadata.config import TopicConfig
from streamhouse.broker.metadata.errors import (
    FencedError,
    MetadataError,
    UnknownPartitionError,
    UnknownTopicError,
)
from streamhouse.broker.metadata.migrations import Migration, load_migrations
from streamhouse.broker.metadata.models import Topic

Row = Sequence[Any]


class DuplicateKeyError(Exception):
    """Raised by a :class:`Tx` when an insert hits a unique constraint (driver-neutral)."""


class Tx(Protocol):
    """One open transaction; SQL uses ``?`` placeholders."""

    async def fetchone(self, sql: str, *args: Any) -> Row | None: ...
    async def fetchall(self, sql: str, *args: Any) -> list[Row]: ...
    async def execute(self, sql: str, *args: Any) -> None: ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


TOPIC_SELECT = "SELECT t.name, t.topic_id, t.partitions, t.config, t.created_at FROM topics t"
SEGMENT_COLUMNS = (
    "base_offset, last_offset, record_count, min_timestamp, max_timestamp, size_bytes, "
    "object_key, writer_epoch, created_at"
)
SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
)


def topic_from_row(row: Row) -> Topic:
    config = TopicConfig.from_json_dict(json.loads(row[3]))
    return Topic(name=row[0], topic_id=row[1], partitions=row[2], config=config, created_at=row[4])


def config_json(config: TopicConfig) -> str:
    return json.dumps(config.to_json_dict(), sort_keys=True)


def fenced_error(
    topic: str, partition: int, holder: str, epoch: int, lease: Row | None
) -> FencedError:
    if lease is None:
        held = "nobody holds its lease"
    else:
        held = f"its lease is held by {lease[0]!r} at epoch {lease[1]}"
    return FencedError(
        f"writer {holder!r} at epoch {epoch} is fenced on {topic}[{partition}]: {held}"
    )


class SqlStoreBase:
    """Hooks the concrete stores implement, plus migrations and the lookups all parts share.

    Subclasses set :attr:`dialect` (the migrations folder) and implement :meth:`_write`,
    :meth:`_read`, :meth:`_for`, :meth:`now_ms`, :meth:`close`, and optionally
    :meth:`_before_migrate` and :meth:`_migration_statements`.
    """

    dialect = ""

    # ------------------------------------------------------------ subclass hooks
    def _write(self) -> AbstractAsyncContextManager[Tx]:
        """A read-write transaction that commits on normal exit and rolls back on error."""
        raise NotImplementedError

    def _read(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction for reads (a consistent snapshot across its statements)."""
        raise NotImplementedError

    def _for(self, mode: str, alias: str) -> str:
        """The row-locking clause (``" FOR UPDATE OF p"``) or ``""`` where writers are serial."""
        raise NotImplementedError

    def _migration_statements(self, migration: Migration) -> list[str]:
        return [migration.sql]

    async def _before_migrate(self, tx: Tx) -> None:
        """Runs first in the migration transaction (PostgreSQL: advisory lock, schema)."""

    async def now_ms(self) -> int:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- migrations
    async def migrate(self) -> None:
        """Applies the migrations not yet recorded in ``schema_version``, in order.

        All pending migrations run in one transaction with the rows recording them, so two
        processes starting together serialise (SQLite's write lock, PostgreSQL's advisory
        lock) and the second finds nothing left to do.

        Raises:
            MetadataError: The database was migrated by a newer StreamHouse.
        """
        migrations = load_migrations(self.dialect)
        async with self._write() as tx:
            await self._before_migrate(tx)
            await tx.execute(SCHEMA_VERSION_DDL)
            applied = {row[0] for row in await tx.fetchall("SELECT version FROM schema_version")}
            newest = migrations[-1].version
            if applied and max(applied) > newest:
                raise MetadataError(
                    f"the metadata schema is at version {max(applied)}, newer than this "
                    f"StreamHouse knows ({newest}); upgrade StreamHouse"
                )
            for migration in migrations:
                if migration.version in applied:
                    continue
                for statement in self._migration_statements(migration):
                    await tx.execute(statement)
                await tx.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    migration.version,
                    migration.name,
                    int(time.time() * 1000),
                )

    async def schema_versions(self) -> list[int]:
        """Versions recorded in ``schema_version`` (for operators and tests)."""
        async with self._read() as tx:
            rows = await tx.fetchall("SELECT version FROM schema_version ORDER BY version")
        return [row[0] for row in rows]

    # ------------------------------------------------------------------ lookups
    async def _lock_topic(self, tx: Tx, name: str) -> Topic:
        row = await tx.fetchone(f"{TOPIC_SELECT} WHERE t.name = ?{self._for('UPDATE', 't')}", name)
        if row is None:
            raise UnknownTopicError(f"unknown topic {name!r}")
        return topic_from_row(row)

    async def _missing(self, tx: Tx, topic: str, partition: int) -> NoReturn:
        """Raises the right lookup error for a partition row that was not found."""
        if await tx.fetchone("SELECT 1 FROM topics WHERE name = ?", topic) is None:
            raise UnknownTopicError(f"unknown topic {topic!r}")
        raise UnknownPartitionError(f"topic {topic!r} has no partition {partition}")

    async def _lock_partition(
        self, tx: Tx, topic: str, partition: int
    ) -> tuple[int, int, int, int]:
        """Locks one partition row: (topic_id, log_start_offset, next_offset, store now)."""
        validate.partition_number(topic, partition)
        row = await tx.fetchone(
            "SELECT p.topic_id, p.log_start_offset, p.next_offset, sh_now_ms() "
            "FROM partitions p JOIN topics t ON t.topic_id = p.topic_id "
            f"WHERE t.name = ? AND p.partition = ?{self._for('UPDATE', 'p')}",
            topic,
            partition,
        )
        if row is None:
            await self._missing(tx, topic, partition)
        return row[0], row[1], row[2], row[3]
