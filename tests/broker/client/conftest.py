"""Fixtures of the client tests: flags that make several servers one cluster."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest


@pytest.fixture
def cluster_flags(postgres_url: str, s3_endpoint: str, s3_bucket: str) -> Iterator[list[str]]:
    """``streamhouse serve`` flags for agents sharing one PostgreSQL schema and one bucket."""
    schema = f"sh_client_{uuid.uuid4().hex[:10]}"
    yield [
        "--metadata-url", f"{postgres_url}?schema={schema}",
        "--object-store", f"s3://{s3_bucket}/c?endpoint={s3_endpoint}&region=us-east-1",
        "--lease-ttl-ms", "3000",
    ]  # fmt: skip

    async def drop() -> None:
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()

    asyncio.run(drop())
