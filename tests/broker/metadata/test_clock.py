"""Lease expiry and agent liveness are judged by the store's clock, never the caller's.

With a fake clock the tests move time without sleeping: SQLite takes the clock as an argument;
on PostgreSQL the schema's ``sh_now_ms()`` is swapped for one reading a table, which shows the
server-side function, not the agent's time, is what every expiry check uses.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from streamhouse.broker.metadata import LeaseHeldError, PostgresMetadataStore, SqliteMetadataStore

START = 1_000_000_000_000

SetClock = Callable[[int], Awaitable[None]]


@pytest.fixture(params=["sqlite", "postgres"])
def server_url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else None


@pytest.fixture
async def clocked(server_url: str | None, tmp_path: Path) -> AsyncIterator[tuple[object, SetClock]]:
    """A migrated store whose clock reads START + whatever the test sets."""
    if server_url is None:
        now = [START]
        store = SqliteMetadataStore(tmp_path / "m.db", clock=lambda: now[0])
        await store.migrate()

        async def set_sqlite(value: int) -> None:
            now[0] = value

        yield store, set_sqlite
        await store.close()
        return
    schema = f"sh_test_{uuid.uuid4().hex[:16]}"
    store = PostgresMetadataStore(server_url, schema=schema, max_size=2)
    await store.migrate()
    admin = await asyncpg.connect(server_url, server_settings={"search_path": schema})
    await admin.execute(
        "CREATE TABLE fake_clock (now_ms BIGINT NOT NULL);"
        f"INSERT INTO fake_clock VALUES ({START});"
        "CREATE OR REPLACE FUNCTION sh_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE "
        "AS $$ SELECT now_ms FROM fake_clock $$;"
    )

    async def set_pg(value: int) -> None:
        await admin.execute("UPDATE fake_clock SET now_ms = $1", value)

    try:
        yield store, set_pg
    finally:
        await store.close()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


async def test_lease_expiry_uses_the_store_clock(clocked) -> None:
    store, set_clock = clocked
    await store.create_topic("t", 1)
    lease = await store.acquire_lease("t", 0, "a", 1_000)
    assert lease.expires_at == START + 1_000
    await set_clock(START + 999)
    with pytest.raises(LeaseHeldError, match="another 1 ms"):
        await store.acquire_lease("t", 0, "b", 1_000)
    renewed = await store.renew_lease("t", 0, "a", lease.epoch, 1_000)
    assert renewed.expires_at == START + 1_999
    await set_clock(START + 2_000)
    taken = await store.acquire_lease("t", 0, "b", 500)
    assert (taken.holder, taken.epoch, taken.expires_at) == ("b", 2, START + 2_500)
    await store.release_lease("t", 0, "b", 2)
    assert (await store.get_lease("t", 0)).expires_at == START + 2_000


async def test_agent_liveness_uses_the_store_clock(clocked) -> None:
    store, set_clock = clocked
    agent = await store.register_agent("a", "host:1")
    assert agent.heartbeat_at == agent.started_at == START
    await set_clock(START + 5_000)
    assert await store.list_agents(alive_within_ms=5_000) == [agent]
    assert await store.list_agents(alive_within_ms=4_999) == []
    await store.heartbeat_agent("a")
    assert (await store.list_agents(alive_within_ms=0))[0].heartbeat_at == START + 5_000
