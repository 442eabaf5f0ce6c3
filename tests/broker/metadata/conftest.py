"""Stores for the metadata contract suite: every test runs on SQLite and on PostgreSQL.

SQLite uses a file under ``tmp_path``; PostgreSQL uses a fresh schema per test, dropped with
CASCADE afterwards. ``make_store`` opens further stores on the same database, which is how
tests play several agents (separate connections, real locking). ``raw`` runs SQL on that
database directly, for the few checks the public API cannot express (schema_version rows).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from streamhouse.broker.metadata import PostgresMetadataStore, SqliteMetadataStore
from streamhouse.broker.metadata.sqlstore import SqlMetadataStore

MakeStore = Callable[[], Awaitable[SqlMetadataStore]]
Raw = Callable[..., Awaitable[list[tuple[Any, ...]]]]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def server_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL URL for the postgres runs: that fixture fails (never skips) without it.

    Requested from a plain fixture because ``postgres_url`` probes with ``asyncio.run``.
    """
    return request.getfixturevalue("postgres_url") if backend == "postgres" else None


@pytest.fixture
async def database(server_url: str | None, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """Where this test's stores live: a SQLite file or a fresh PostgreSQL schema."""
    if server_url is None:
        yield {"path": str(tmp_path / "meta.db")}
        return
    url = server_url
    schema = f"sh_test_{uuid.uuid4().hex[:16]}"
    try:
        yield {"url": url, "schema": schema}
    finally:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture
async def make_store(database: dict[str, str]) -> AsyncIterator[MakeStore]:
    """Opens (unmigrated) stores on the test's database; all are closed at the end."""
    opened: list[SqlMetadataStore] = []

    async def make() -> SqlMetadataStore:
        store: SqlMetadataStore
        if "path" in database:
            store = SqliteMetadataStore(database["path"])
        else:
            store = PostgresMetadataStore(database["url"], schema=database["schema"], max_size=4)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(make_store: MakeStore) -> SqlMetadataStore:
    """A migrated store on a fresh, empty database."""
    s = await make_store()
    await s.migrate()
    return s


@pytest.fixture
def raw(database: dict[str, str]) -> Raw:
    """Runs one SQL statement (``?`` placeholders) on the test database; returns its rows."""

    async def run(sql: str, *args: Any) -> list[tuple[Any, ...]]:
        if "path" in database:
            with sqlite3.connect(database["path"], timeout=10) as conn:
                return conn.execute(sql, args).fetchall()
        numbered = sql
        for i in range(1, len(args) + 1):
            numbered = numbered.replace("?", f"${i}", 1)
        conn = await asyncpg.connect(
            database["url"], server_settings={"search_path": database["schema"]}
        )
        try:
            return [tuple(r) for r in await conn.fetch(numbered, *args)]
        finally:
            await conn.close()

    return run
