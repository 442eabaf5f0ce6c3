"""The embedded metadata store: one SQLite file through aiosqlite.

One connection, and an asyncio lock around every transaction: aiosqlite runs statements in
order on its own thread, so the lock is what keeps two tasks' transactions from interleaving
on the connection. Writers open ``BEGIN IMMEDIATE``, which takes SQLite's write lock up front,
so several processes sharing the file (tests run a small cluster this way) serialise too,
waiting up to ``busy_timeout_ms`` for each other. WAL journal mode lets readers proceed while
a writer commits, and ``synchronous=FULL`` makes a committed segment row survive power loss,
because the leader drops its WAL copy of the data once the row is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from streamhouse.broker.metadata.errors import MetadataError
from streamhouse.broker.metadata.migrations import Migration, split_sqlite_statements
from streamhouse.broker.metadata.sqlstore import DuplicateKeyError, Row, SqlMetadataStore


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class _SqliteTx:
    """A :class:`~streamhouse.broker.metadata.sqlstore.Tx` over the aiosqlite connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        try:
            async with self._conn.execute(sql, args) as cursor:
                return await cursor.fetchone()
        except sqlite3.IntegrityError as exc:
            raise _translate(exc) from exc

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        async with self._conn.execute(sql, args) as cursor:
            return list(await cursor.fetchall())

    async def execute(self, sql: str, *args: Any) -> None:
        try:
            await self._conn.execute(sql, args)
        except sqlite3.IntegrityError as exc:
            raise _translate(exc) from exc

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            await self._conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise _translate(exc) from exc


def _translate(exc: sqlite3.IntegrityError) -> Exception:
    if "UNIQUE constraint failed" in str(exc) or "PRIMARY KEY" in str(exc):
        return DuplicateKeyError(str(exc))
    return exc


class SqliteMetadataStore(SqlMetadataStore):
    """Metadata in a local SQLite file (the embedded default) or ``":memory:"``.

    Args:
        path: The database file; its parent folder is created if missing.
        busy_timeout_ms: How long to wait for another process's write lock.
        clock: The store's clock in epoch milliseconds (tests may pass a fake one).
    """

    dialect = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_ms: int = 10_000,
        clock: Callable[[], int] = _wall_clock_ms,
    ) -> None:
        self.path = str(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._clock = clock
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteMetadataStore({self.path!r})"

    async def _connection(self) -> aiosqlite.Connection:
        if self._closed:
            raise MetadataError(f"{self!r} is closed")
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: no implicit transactions; every one is opened here.
            conn = aiosqlite.connect(self.path, isolation_level=None)
            # aiosqlite's worker thread is not a daemon: a process that dies of an exception
            # without closing the store would hang at exit instead of ending (and restarting).
            # Exiting mid-transaction is as safe as SIGKILL; SQLite rolls it back.
            worker = getattr(conn, "_thread", None)
            if worker is not None and not worker.is_alive():
                worker.daemon = True
            await conn
            try:
                await conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
                if self.path != ":memory:":
                    await self._enable_wal(conn)
                await conn.execute("PRAGMA synchronous = FULL")
                await conn.execute("PRAGMA foreign_keys = ON")
                await conn.create_function("sh_now_ms", 0, self._clock, deterministic=False)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def _enable_wal(self, conn: aiosqlite.Connection) -> None:
        """Switches a fresh file to WAL mode. The switch needs the file to itself and does not
        honour busy_timeout, so processes opening a new file together retry it here."""
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        while True:
            try:
                await conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.02)

    @asynccontextmanager
    async def _transaction(self, begin: str) -> AsyncIterator[_SqliteTx]:
        async with self._lock:
            conn = await self._connection()
            try:
                await conn.execute(begin)
                yield _SqliteTx(conn)
                await conn.execute("COMMIT")
            except BaseException:
                # Statements run in order on aiosqlite's thread, so this rollback follows
                # whatever was already queued, even when the task was cancelled mid-await.
                # (It fails harmlessly when BEGIN failed or COMMIT went through.)
                with contextlib.suppress(sqlite3.Error):
                    await conn.execute("ROLLBACK")
                raise

    def _write(self) -> contextlib.AbstractAsyncContextManager[_SqliteTx]:
        return self._transaction("BEGIN IMMEDIATE")

    def _read(self) -> contextlib.AbstractAsyncContextManager[_SqliteTx]:
        return self._transaction("BEGIN")

    def _for(self, mode: str, alias: str) -> str:
        return ""  # BEGIN IMMEDIATE already holds the database's single write lock

    def _migration_statements(self, migration: Migration) -> list[str]:
        return split_sqlite_statements(migration.sql)

    async def now_ms(self) -> int:
        """The store's clock: this process's wall clock (the file is local to this host)."""
        return self._clock()

    async def close(self) -> None:
        """Closes the connection; idempotent. Later calls raise MetadataError."""
        self._closed = True
        async with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                await conn.close()
