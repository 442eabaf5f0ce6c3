"""Running a prepared query off the event loop, bounded or as a stream, and stopping it.

Every DuckDB call of one query runs on that query's own thread, in order: the scans' readers
block that thread while they hop onto the loop for each piece, so DuckDB calls must never wait
in the loop's shared default executor (the scans decode there; a full pool would deadlock).

Stopping is never awaited: when the client goes away the awaiting task is cancelled (under
Starlette possibly in a scope that cancels every later await), so cancelling interrupts DuckDB
and queues the release (result reader, session, and with it the scans' readers) behind the call
that is running. ``streamhouse_sql_queries_running`` drops when that release has happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow as pa
from prometheus_client import Counter, Gauge
from streamhouse.engine.duckdb_adapter import DuckDBSession, QueryError, ResultStream
from streamhouse.engine.scan import TopicScan

from .results import SqlResult, type_name

T = TypeVar("T")

QUERIES_RUNNING = Gauge(
    "streamhouse_sql_queries_running",
    "Point-in-time SQL queries holding a DuckDB session (bounded and streamed)",
)
QUERIES = Counter(
    "streamhouse_sql_queries_total",
    "Point-in-time SQL queries by outcome (ok, invalid, failed, timeout, cancelled, "
    "memory_limit, rejected)",
    ["outcome"],
)

STATS_FIELDS = (
    "segments_read",
    "segments_skipped",
    "companions_read",
    "bytes_read",
    "partitions_committed_only",
)


@dataclass(frozen=True)
class PreparedQuery:
    """A SELECT ready to run: its DuckDB SQL and one opened scan per relation it names."""

    sql: str
    relations: list[str]
    scans: list[TopicScan]
    # Per relation: the declared stream/table (SourceDeclaration) typing its scan, None a topic.
    sources: tuple[Any, ...] = ()

    def scan_failure(self, error: QueryError) -> BaseException:
        """The error to report for DuckDB's ``error``: the scan failure behind it, if any (a
        timeout, cancel or memory error stays what it is: the scan stopped because of it)."""
        if type(error) is not QueryError:
            return error
        return next((s.failure for s in self.scans if s.failure is not None), error)

    def stats(self) -> dict[str, int]:
        """What the scans read so far, summed (final once DuckDB finished reading them)."""
        totals = {name: sum(getattr(s.stats, name) for s in self.scans) for name in STATS_FIELDS}
        totals["rows_scanned"] = sum(s.stats.rows for s in self.scans)
        return totals


class SessionThread:
    """One DuckDB session driven from its own thread; see the module notes."""

    def __init__(self, session: DuckDBSession) -> None:
        self.session = session
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sql-query")
        self._running: Future[Any] | None = None
        self._closed = False
        QUERIES_RUNNING.inc()

    async def call(self, fn: Callable[[], T]) -> T:
        """Runs ``fn`` on the session's thread; a cancelled caller interrupts DuckDB."""
        if self._closed:
            raise RuntimeError("the query was closed")
        self._running = self._thread.submit(fn)
        try:
            return await asyncio.wrap_future(self._running)
        except asyncio.CancelledError:
            self.close()
            raise

    def close(self, release_first: Callable[[], None] | None = None) -> None:
        """Interrupts a running call, then releases the session after it; never blocks."""
        if self._closed:
            return
        self._closed = True
        if self._running is not None and not self._running.done():
            with contextlib.suppress(Exception):  # it may finish and close meanwhile
                self.session.cancel()

        def release() -> None:
            try:
                if release_first is not None:
                    with contextlib.suppress(Exception):
                        release_first()
                self.session.close()
            finally:
                QUERIES_RUNNING.dec()

        self._thread.submit(release)
        self._thread.shutdown(wait=False)


class QueryStream:
    """A statement's rows as Arrow batches, produced as the consumer asks for them.

    ``columns`` is known before the first batch; ``row_count``, ``stats`` and ``elapsed_ms``
    are final once :meth:`batches` is exhausted. Always :meth:`close` it (idempotent).
    """

    def __init__(self, columns: list[dict[str, str]], started: float) -> None:
        self.columns = columns
        self.row_count = 0
        self._started = started

    @property
    def elapsed_ms(self) -> float:
        return (time.monotonic() - self._started) * 1000

    def stats(self) -> dict[str, int] | None:
        return None

    def batches(self) -> AsyncIterator[pa.RecordBatch]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class StaticStream(QueryStream):
    """A result the service built itself (SHOW, DESCRIBE, EXPLAIN) as a one-batch stream."""

    def __init__(self, result: SqlResult, started: float) -> None:
        super().__init__(result.columns, started)
        self._result = result

    def stats(self) -> dict[str, int] | None:
        return self._result.stats

    async def batches(self) -> AsyncIterator[pa.RecordBatch]:
        rows = self._result.rows
        if not rows:
            return
        names = [c["name"] for c in self.columns]
        arrays = [pa.array([row[i] for row in rows]) for i in range(len(names))]
        self.row_count = len(rows)
        yield pa.RecordBatch.from_arrays(arrays, names=names)


class DuckDBStream(QueryStream):
    """A SELECT streamed from DuckDB: each batch is fetched when the consumer wants it."""

    def __init__(
        self, worker: SessionThread, result: ResultStream, prepared: PreparedQuery, started: float
    ) -> None:
        columns = [{"name": f.name, "type": type_name(f.type)} for f in result.schema]
        super().__init__(columns, started)
        self._worker = worker
        self._result = result
        self._prepared = prepared

    @classmethod
    async def start(
        cls,
        session: DuckDBSession,
        prepared: PreparedQuery,
        register: Callable[[DuckDBSession, PreparedQuery], None],
        started: float,
    ) -> DuckDBStream:
        """Registers the relations and runs the query up to its first batch.

        Raises like ``DuckDBSession.stream`` (the session is released on failure).
        """
        worker = SessionThread(session)

        def open_result() -> ResultStream:
            register(session, prepared)
            return session.stream(prepared.sql)

        try:
            result = await worker.call(open_result)
        except QueryError as exc:
            worker.close()
            raise prepared.scan_failure(exc) from exc
        except BaseException:
            worker.close()
            raise
        return cls(worker, result, prepared, started)

    async def batches(self) -> AsyncIterator[pa.RecordBatch]:
        while True:
            try:
                batch = await self._worker.call(self._result.next_batch)
            except QueryError as exc:
                raise self._prepared.scan_failure(exc) from exc
            if batch is None:
                return
            self.row_count += batch.num_rows
            yield batch

    def stats(self) -> dict[str, int]:
        return self._prepared.stats()

    def close(self) -> None:
        self._worker.close(release_first=self._result.close)
