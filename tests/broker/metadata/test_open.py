"""Opening a store from its URL, and the migrations shipped with the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from streamhouse.broker.metadata import (
    PostgresMetadataStore,
    SqliteMetadataStore,
    TopicConfig,
    open_metadata_store,
)
from streamhouse.broker.metadata.migrations import load_migrations, split_sqlite_statements

MIGRATIONS = Path(__file__).parents[3] / "broker" / "metadata" / "migrations"


async def test_sqlite_relative_absolute_and_memory_urls(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_metadata_store("sqlite:///data/meta.db")
    absolute = open_metadata_store(f"sqlite:///{tmp_path / 'abs' / 'meta.db'}")
    memory = open_metadata_store("sqlite:///:memory:")
    assert isinstance(relative, SqliteMetadataStore)
    assert relative.path == "data/meta.db"
    assert absolute.path == str(tmp_path / "abs" / "meta.db")
    assert memory.path == ":memory:"
    for store in (relative, absolute, memory):
        await store.migrate()
        await store.create_topic("t", 1, TopicConfig(segment_ms=9))
        assert (await store.get_topic("t")).config.segment_ms == 9
        await store.close()
    assert (tmp_path / "data" / "meta.db").is_file()  # parent folder created
    assert (tmp_path / "abs" / "meta.db").is_file()
    reopened = open_metadata_store(f"sqlite:///{tmp_path / 'abs' / 'meta.db'}")
    try:
        assert [t.name for t in await reopened.list_topics()] == ["t"]
    finally:
        await reopened.close()


async def test_postgres_url_with_schema(postgres_url: str) -> None:
    import uuid

    import asyncpg

    schema = f"sh_test_{uuid.uuid4().hex[:16]}"
    store = open_metadata_store(f"{postgres_url}?schema={schema}")
    assert isinstance(store, PostgresMetadataStore)
    assert store.schema == schema and "schema" not in store.url
    try:
        await store.migrate()
        await store.create_topic("t", 1)
        conn = await asyncpg.connect(postgres_url)
        try:
            count = await conn.fetchval(f"SELECT count(*) FROM {schema}.topics")
            assert count == 1
        finally:
            await conn.close()
    finally:
        await store.close()
        conn = await asyncpg.connect(postgres_url)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()
    short = open_metadata_store(postgres_url.replace("postgresql://", "postgres://"))
    assert isinstance(short, PostgresMetadataStore) and short.schema == "public"


@pytest.mark.parametrize(
    "url", ["mysql://x/y", "sqlite://", "sqlite:///", "sqlite://relative.db", "meta.db", ""]
)
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="metadata URL"):
        open_metadata_store(url)


@pytest.mark.parametrize("schema", ["", "a-b", "x;drop", '"q"', "1abc"])
def test_schema_must_be_a_plain_identifier(schema: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        PostgresMetadataStore("postgresql://localhost/db", schema=schema)


def test_migrations_are_package_data_in_version_order() -> None:
    for dialect in ("sqlite", "postgres"):
        migrations = load_migrations(dialect)
        assert [m.version for m in migrations] == sorted({m.version for m in migrations})
        assert migrations[0].name == "0001_initial.sql"
        assert "CREATE TABLE segments" in migrations[0].sql
    with pytest.raises(RuntimeError, match="oracle"):
        load_migrations("oracle")


def test_migrations_are_found_from_outside_the_repository(tmp_path: Path) -> None:
    code = (
        "from streamhouse.broker.metadata.migrations import load_migrations;"
        "print(len(load_migrations('sqlite')), len(load_migrations('postgres')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    shipped = [len(list((MIGRATIONS / d).glob("*.sql"))) for d in ("sqlite", "postgres")]
    assert shipped[0] >= 3
    assert result.stdout.split() == [str(n) for n in shipped]


def test_sqlite_scripts_split_into_whole_statements() -> None:
    script = (
        "-- a comment; with a semicolon\n"
        "CREATE TABLE a (x TEXT DEFAULT 'a;b');\n"
        "\n"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n"
        "  UPDATE a SET x = 'y';\n"
        "END;\n"
    )
    statements = split_sqlite_statements(script)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with pytest.raises(RuntimeError, match="incomplete"):
        split_sqlite_statements("CREATE TABLE b (x")
