"""A real (SQLite) metadata store with two topics, and coordinators over it.

Members are plain asyncio tasks calling the coordinator the way a listener would on behalf of
a client; timeouts are around a second so expiry tests stay quick.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from streamhouse.broker.groups import GroupCoordinator, JoinResult, Subscription
from streamhouse.broker.groups.protocol import encode_subscription
from streamhouse.broker.metadata import open_metadata_store
from streamhouse.broker.metadata.store import MetadataStore

TOPICS = {"orders": 4, "payments": 2}
SUBSCRIPTION = encode_subscription(Subscription(sorted(TOPICS)))

MakeCoordinator = Callable[..., Awaitable[GroupCoordinator]]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MetadataStore]:
    store = open_metadata_store("sqlite:///" + str(tmp_path / "m.db"))
    await store.migrate()
    for name, partitions in TOPICS.items():
        await store.create_topic(name, partitions)
    yield store
    await store.close()


@pytest.fixture
async def make_coordinator(store: MetadataStore) -> AsyncIterator[MakeCoordinator]:
    """Started coordinators with the given options; all are closed at the end."""
    made: list[GroupCoordinator] = []

    async def make(**options: Any) -> GroupCoordinator:
        coordinator = GroupCoordinator(store, **options)
        await coordinator.start()
        made.append(coordinator)
        return coordinator

    yield make
    for coordinator in made:
        await coordinator.close()


@pytest.fixture
async def coordinator(make_coordinator: MakeCoordinator) -> GroupCoordinator:
    return await make_coordinator()


@pytest.fixture
def join() -> Callable[..., Awaitable[JoinResult]]:
    """``await join(coordinator, member_id="", **options)``: see :func:`join_as_consumer`."""
    return join_as_consumer


async def join_as_consumer(
    coordinator: GroupCoordinator,
    member_id: str = "",
    *,
    group: str = "g",
    protocols: list[tuple[str, bytes]] | None = None,
    protocol_type: str = "consumer",
    session_timeout_ms: int = 10_000,
    rebalance_timeout_ms: int = 5_000,
    **options: Any,
) -> JoinResult:
    """A JoinGroup as a Kafka consumer sends it (range assignor, both topics)."""
    return await coordinator.join(
        group,
        member_id,
        client_id="client",
        client_host="127.0.0.1",
        protocol_type=protocol_type,
        protocols=protocols if protocols is not None else [("range", SUBSCRIPTION)],
        session_timeout_ms=session_timeout_ms,
        rebalance_timeout_ms=rebalance_timeout_ms,
        **options,
    )
