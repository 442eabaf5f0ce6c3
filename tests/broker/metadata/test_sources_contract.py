"""Declared streams and tables in the metadata contract, on SQLite and on PostgreSQL.

What the SQL layer relies on: one namespace for streams and tables, names unique ignoring case
but shown as declared, IF NOT EXISTS / OR REPLACE semantics decided atomically in the store,
declarations that survive reopening and that a second agent sees at once.
"""

from __future__ import annotations

import asyncio

import pytest
from streamhouse.broker.metadata import (
    DeclaredColumn,
    InvalidRequestError,
    SourceDeclaration,
    SourceExistsError,
    UnknownSourceError,
)


def declaration(name: str = "Orders", kind: str = "stream", topic: str = "orders", **props):
    columns = (
        DeclaredColumn("ID", "VARCHAR", "key" if kind == "stream" else "primary"),
        DeclaredColumn("amount", "DOUBLE"),
        DeclaredColumn('we"ird name', "STRUCT(a INTEGER, b VARCHAR[])"),
    )
    properties = {"value_format": "JSON", "key_format": "KAFKA", **props}
    return SourceDeclaration(name, kind, topic, columns, properties)


async def test_create_get_list_delete_round_trip(store) -> None:
    created = await store.create_source(declaration(partitions=3, wrap=True, ratio=0.5))
    assert created.created_at > 0
    got = await store.get_source("orders")
    assert got == created
    assert got.columns[2] == DeclaredColumn('we"ird name', "STRUCT(a INTEGER, b VARCHAR[])")
    assert got.properties == {
        "value_format": "JSON",
        "key_format": "KAFKA",
        "partitions": 3,
        "wrap": True,
        "ratio": 0.5,
    }
    await store.create_source(declaration("users", "table", "users"))
    assert [s.name for s in await store.list_sources()] == ["Orders", "users"]
    deleted = await store.delete_source("ORDERS")
    assert deleted.name == "Orders"
    assert [s.name for s in await store.list_sources()] == ["users"]
    with pytest.raises(UnknownSourceError, match="ORDERS"):
        await store.get_source("ORDERS")
    with pytest.raises(UnknownSourceError):
        await store.delete_source("orders")


async def test_names_are_unique_ignoring_case_across_streams_and_tables(store) -> None:
    await store.create_source(declaration("Orders"))
    with pytest.raises(SourceExistsError, match="stream named 'Orders'"):
        await store.create_source(declaration("ORDERS", "table"))
    with pytest.raises(SourceExistsError):
        await store.create_source(declaration("orders"))
    assert len(await store.list_sources()) == 1


async def test_if_not_exists_returns_the_existing_declaration_unchanged(store) -> None:
    first = await store.create_source(declaration("Orders", topic="a"))
    again = await store.create_source(declaration("orders", topic="b"), if_not_exists=True)
    assert again == first
    assert (await store.get_source("orders")).topic == "a"


async def test_or_replace_overwrites_the_declaration(store) -> None:
    await store.create_source(declaration("Orders", topic="a"))
    replaced = await store.create_source(declaration("ORDERS", "table", topic="b"), or_replace=True)
    got = await store.get_source("orders")
    assert got == replaced
    assert (got.name, got.kind, got.topic) == ("ORDERS", "table", "b")
    fresh = await store.create_source(declaration("new"), or_replace=True)
    assert await store.get_source("new") == fresh


@pytest.mark.parametrize(
    "bad",
    [
        declaration(""),
        declaration("x" * 256),
        declaration(kind="view"),
        declaration(topic=""),
        SourceDeclaration("s", "stream", "t", (("a", "INT", None),)),  # type: ignore[arg-type]
        declaration(bad=object()),
        "not a declaration",
    ],
)
async def test_malformed_declarations_are_refused_and_store_nothing(store, bad) -> None:
    with pytest.raises(InvalidRequestError):
        await store.create_source(bad)
    assert await store.list_sources() == []


async def test_long_and_quoted_names_are_kept_exactly(store) -> None:
    names = ["x" * 255, 'it\'s "quoted"; DROP TABLE sources; --', "ünïcode ✓"]
    for name in names:
        await store.create_source(declaration(name))
    assert sorted(s.name for s in await store.list_sources()) == sorted(names)
    for name in names:
        assert (await store.get_source(name)).name == name


async def test_another_agent_sees_declarations_at_once(store, make_store) -> None:
    other = await make_store()
    await other.migrate()
    await store.create_source(declaration("Orders"))
    assert (await other.get_source("orders")).name == "Orders"
    await other.delete_source("orders")
    assert await store.list_sources() == []


async def test_concurrent_creates_of_one_name_store_exactly_one(store, make_store) -> None:
    stores = [store]
    for _ in range(2):
        s = await make_store()
        await s.migrate()
        stores.append(s)
    results = await asyncio.gather(
        *(s.create_source(declaration("race", topic=f"t{i}")) for i, s in enumerate(stores)),
        return_exceptions=True,
    )
    created = [r for r in results if isinstance(r, SourceDeclaration)]
    assert len(created) == 1
    assert all(isinstance(r, SourceExistsError) for r in results if r not in created)
    assert (await store.get_source("race")).topic == created[0].topic


async def test_declarations_survive_reopening(store, make_store) -> None:
    created = await store.create_source(declaration("Orders"))
    await store.close()
    reopened = await make_store()
    await reopened.migrate()
    assert await reopened.get_source("orders") == created
