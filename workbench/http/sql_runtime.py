"""What the SQL endpoints share across requests: the limits, the cap on queries running at once,
and noticing that a client went away while its query runs.

A query a client abandoned must stop, not run to its timeout holding memory and a slot: the
endpoints race the query against the ASGI ``http.disconnect`` message and cancel the loser
(cancelling interrupts DuckDB, ``engine/query/running.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, Request
from streamhouse.engine.duckdb_adapter import DuckDBSettings
from streamhouse.engine.query import QueryService
from streamhouse.engine.query.running import QUERIES
from streamhouse.workbench.http.errors import ApiError

T = TypeVar("T")
DEFAULT_MAX_CONCURRENT = 8


class ClientGoneError(Exception):
    """The client disconnected before its answer was ready."""


@dataclass
class QueryGate:
    """At most ``limit`` SQL queries at once on this server; the next one is refused (429)."""

    limit: int
    running: int = 0

    def enter(self) -> QuerySlot:
        if self.running >= self.limit:
            QUERIES.labels("rejected").inc()
            raise ApiError(
                429,
                "TOO_MANY_QUERIES",
                f"{self.running} SQL queries are running, the most this server runs at once "
                f"(sql_max_concurrent={self.limit}); retry when one has finished",
            )
        self.running += 1
        return QuerySlot(self)


@dataclass
class QuerySlot:
    """One admitted query; ``leave`` is idempotent, so every exit path may call it."""

    gate: QueryGate
    left: bool = field(default=False)

    def leave(self, outcome: str) -> None:
        if not self.left:
            self.left = True
            self.gate.running -= 1
            QUERIES.labels(outcome).inc()


@dataclass(frozen=True)
class SqlRuntime:
    settings: DuckDBSettings
    gate: QueryGate

    def service(self, request: Request) -> QueryService:
        return QueryService(request.app.state.broker, self.settings)


def configure_sql(app: FastAPI, settings: DuckDBSettings, max_concurrent: int) -> None:
    """Sets the SQL limits of ``app`` (``streamhouse serve`` calls it with its settings)."""
    app.state.sql = SqlRuntime(settings, QueryGate(max_concurrent))


def sql_runtime(request: Request) -> SqlRuntime:
    runtime = getattr(request.app.state, "sql", None)
    if runtime is None:
        configure_sql(request.app, DuckDBSettings(), DEFAULT_MAX_CONCURRENT)
        runtime = request.app.state.sql
    return runtime


Sql = Annotated[SqlRuntime, Depends(sql_runtime)]


async def _disconnected(request: Request) -> None:
    """Returns when the client has disconnected (the body was already read by then)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Awaits ``work``; if the client disconnects first, cancels it and raises ClientGoneError."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    if task.cancelled():
        raise ClientGoneError()
    if not task.done():
        # Cancelled just now; its own cleanup interrupts DuckDB without being awaited here.
        task.add_done_callback(_consume_outcome)
        raise ClientGoneError()
    return task.result()


def _consume_outcome(task: asyncio.Future) -> None:
    with contextlib.suppress(BaseException):
        task.exception()
