"""The shared metadata store: PostgreSQL through an asyncpg pool.

Several agents use one database, so correctness rests on row locks (``SELECT ... FOR UPDATE``
of the partition row before its lease or offsets are read, see ``sqlstore``) and on the
server's clock (``sh_now_ms()``), never on an agent's. Every table lives in one schema, put
first on each pooled connection's ``search_path``, so tests and tenants can be isolated.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
from streamhouse.broker.metadata.errors import MetadataError
from streamhouse.broker.metadata.sqlstore import DuplicateKeyError, Row, SqlMetadataStore, Tx

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_PLACEHOLDER = re.compile(r"\?")
_MIGRATION_LOCK = 0x5348  # "SH": first key of the advisory lock; the second is the schema's
_NOW_SQL = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT"


def _numbered(sql: str, cache: dict[str, str] = {}) -> str:  # noqa: B006 - deliberate memo
    """Rewrites ``?`` placeholders as ``$1, $2, ...`` (our SQL has no literal ``?``)."""
    out = cache.get(sql)
    if out is None:
        counter = iter(range(1, 1_000_000))
        out = cache[sql] = _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)
    return out


def _schema_lock_key(schema: str) -> int:
    """A stable signed 32-bit key per schema, so migrations of different schemas don't wait."""
    value = zlib.crc32(schema.encode())
    return value - 2**32 if value >= 2**31 else value


class _PgTx:
    """A :class:`~streamhouse.broker.metadata.sqlstore.Tx` over one pooled connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        try:
            return await self._conn.fetchrow(_numbered(sql), *args)
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateKeyError(str(exc)) from exc

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._conn.fetch(_numbered(sql), *args))

    async def execute(self, sql: str, *args: Any) -> None:
        try:
            if args:
                await self._conn.execute(_numbered(sql), *args)
            else:  # simple-query protocol: a migration script may hold several statements
                await self._conn.execute(sql)
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateKeyError(str(exc)) from exc

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            await self._conn.executemany(_numbered(sql), rows)
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateKeyError(str(exc)) from exc


class PostgresMetadataStore(SqlMetadataStore):
    """Metadata in PostgreSQL, shared by every agent of a cluster.

    Args:
        url: ``postgresql://user:password@host:port/database`` (``postgres://`` too).
        schema: The schema holding the tables; :meth:`migrate` creates it when missing.
        min_size: Connections the pool keeps open.
        max_size: Connections the pool may open.
    """

    dialect = "postgres"

    def __init__(
        self, url: str, *, schema: str = "public", min_size: int = 1, max_size: int = 10
    ) -> None:
        if not _IDENTIFIER.fullmatch(schema):
            raise ValueError(
                f"schema {schema!r} must be a plain SQL identifier (letters, digits, '_')"
            )
        self.url = url
        self.schema = schema
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresMetadataStore(schema={self.schema!r})"  # the URL may hold a password

    async def _get_pool(self) -> asyncpg.Pool:
        if self._closed:
            raise MetadataError(f"{self!r} is closed")
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.url,
                        min_size=self._min_size,
                        max_size=self._max_size,
                        server_settings={"search_path": f'"{self.schema}"'},
                    )
        return self._pool

    @asynccontextmanager
    async def _transaction(self, **options: Any) -> AsyncIterator[Tx]:
        pool = await self._get_pool()
        async with pool.acquire() as conn, conn.transaction(**options):
            yield _PgTx(conn)

    def _write(self) -> AbstractAsyncContextManager[Tx]:
        return self._transaction()

    def _read(self) -> AbstractAsyncContextManager[Tx]:
        # REPEATABLE READ: one snapshot for every statement of the read.
        return self._transaction(isolation="repeatable_read", readonly=True)

    def _for(self, mode: str, alias: str) -> str:
        return f" FOR {mode} OF {alias}"

    async def _before_migrate(self, tx: Tx) -> None:
        # Serialises concurrent starters; released when the migration transaction ends.
        await tx.execute(
            "SELECT pg_advisory_xact_lock(?, ?)", _MIGRATION_LOCK, _schema_lock_key(self.schema)
        )
        exists = await tx.fetchone("SELECT 1 FROM pg_namespace WHERE nspname = ?", self.schema)
        if exists is None:
            await tx.execute(f'CREATE SCHEMA "{self.schema}"')

    async def now_ms(self) -> int:
        """The database server's clock, the one lease expiry is judged by."""
        pool = await self._get_pool()
        return int(await pool.fetchval(_NOW_SQL))

    async def close(self) -> None:
        """Closes the pool; idempotent. Later calls raise MetadataError."""
        self._closed = True
        async with self._pool_lock:
            if self._pool is not None:
                pool, self._pool = self._pool, None
                await pool.close()
