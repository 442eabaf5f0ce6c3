"""Statement -> result: the one entry point every SQL surface calls.

A SELECT opens one snapshot scan per table reference before DuckDB runs (so every reference,
a self-join's too, sees the log up to the high watermarks at the query's start), registers each
under its own relation name and runs the transpiled SQL off the event loop: the scans' readers
hop back onto the loop for each batch, DuckDB's work never blocks it. Limits (10,000 rows, 30 s,
memory) are the session's `DuckDBSettings`; `stream` answers the same statements without the
row limit, batch by batch (``running.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any, TypeVar

from streamhouse.broker.service import BrokerService
from streamhouse.engine.duckdb_adapter import DuckDBSession, DuckDBSettings, QueryError
from streamhouse.engine.scan import ScanSpec as TopicScanSpec
from streamhouse.engine.scan import TopicScan, open_scan
from streamhouse.engine.scan.projection import scan_columns
from streamhouse.engine.sources import register_source
from streamhouse.engine.sources.ddl import create_source, drop_source, show_sources
from streamhouse.engine.sources.describe import describe
from streamhouse.sql import ScanSpec, SqlError, analyze, parse_statement, to_duckdb
from streamhouse.sql.errors import did_you_mean
from streamhouse.sql.statements import (
    CreateSourceStatement,
    DescribeStatement,
    DropStatement,
    ExplainStatement,
    QueryStatement,
    ShowStatement,
    Statement,
)

from .catalog import Entry, TopicCatalog, missing_topic
from .counting import count_from_offsets, counts_from_offsets
from .explain import explain
from .results import SqlResult, from_arrow, from_rows
from .running import DuckDBStream, PreparedQuery, QueryStream, SessionThread, StaticStream

T = TypeVar("T")


def _min(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def engine_spec(spec: ScanSpec, topic: str) -> TopicScanSpec:
    """The scan of one reference; AS OF becomes an upper bound (offset <= n, timestamp <= t)."""
    as_of_offset_end = None if spec.as_of_offset is None else spec.as_of_offset + 1
    as_of_time_end = None if spec.as_of_timestamp_ms is None else spec.as_of_timestamp_ms + 1
    return TopicScanSpec(
        topic=topic,
        partitions=spec.partitions,
        offset_min=spec.offset_min,
        offset_max=_min(spec.offset_max, as_of_offset_end),
        time_min_ms=spec.time_min_ms,
        time_max_ms=_min(spec.time_max_ms, as_of_time_end),
        keys=spec.keys,
    )


async def off_loop(work: Callable[..., T], *args: Any) -> T:
    """Runs a parsing/analysis step in a worker thread: a statement of up to a million
    characters takes seconds to parse, which must not stall the agent's event loop (Kafka,
    gRPC and HTTP share it). A statement nested past Python's recursion limit is the
    client's error, not the server's."""

    def guarded() -> T:
        try:
            return work(*args)
        except RecursionError:
            raise SqlError(
                "The statement is nested too deeply to analyse; flatten the expression "
                "(e.g. IN (...) instead of a long chain of OR)"
            ) from None

    return await asyncio.to_thread(guarded)


def relation_name(ref: int) -> str:
    return f"__sh_scan_{ref}"


class QueryService:
    def __init__(self, broker: BrokerService, settings: DuckDBSettings | None = None) -> None:
        self.broker = broker
        self.settings = settings or DuckDBSettings()

    async def execute(self, sql: str) -> SqlResult:
        """Runs one statement.

        Raises:
            SqlError: the statement is invalid, refused or names an unknown topic.
            QueryError: DuckDB failed it (QueryTimeoutError past the timeout).
        """
        started = time.monotonic()
        result = await self._dispatch(await off_loop(parse_statement, sql))
        if not result.elapsed_ms:
            elapsed = (time.monotonic() - started) * 1000
            result = dataclasses.replace(result, elapsed_ms=elapsed)
        return result

    async def stream(self, sql: str) -> QueryStream:
        """Starts one statement and returns its rows as Arrow batches, with no row limit.

        A SELECT runs up to its first batch here, so anything failing before the first row
        raises like :meth:`execute`; later failures raise from ``QueryStream.batches``. The
        timeout and memory budget still apply. The caller must ``close()`` the stream.
        """
        started = time.monotonic()
        statement = await off_loop(parse_statement, sql)
        if not isinstance(statement, QueryStatement):
            return StaticStream(await self._dispatch(statement), started)
        prepared = await self._prepare(statement)
        counted = count_from_offsets(statement, prepared)
        if counted is not None:
            return StaticStream(counted, started)
        session = DuckDBSession(self.settings)
        return await DuckDBStream.start(session, prepared, self._register_relations, started)

    async def _catalog(self) -> TopicCatalog:
        topics = [t.name for t in await self.broker.list_topics()]
        return TopicCatalog(topics, await self.broker.metadata.list_sources())

    async def _dispatch(self, statement: Statement) -> SqlResult:
        if isinstance(statement, QueryStatement):
            return await self._query(statement)
        if isinstance(statement, ShowStatement):
            return await self._show(statement)
        if isinstance(statement, DescribeStatement):
            return await self._describe(statement)
        if isinstance(statement, ExplainStatement):
            return await self._explain(statement.query)
        if isinstance(statement, CreateSourceStatement):
            return await create_source(self.broker, statement)
        if isinstance(statement, DropStatement):
            return await drop_source(self.broker, statement)
        raise SqlError(f"{type(statement).__name__} is not supported")

    async def _show(self, statement: ShowStatement) -> SqlResult:
        if statement.kind != "topics":
            return await show_sources(self.broker, statement.kind)
        topics = await self.broker.list_topics()
        rows = [[t.name, t.partitions] for t in sorted(topics, key=lambda t: t.name)]
        return from_rows([("name", "VARCHAR"), ("partitions", "INTEGER")], rows)

    async def _describe(self, statement: DescribeStatement) -> SqlResult:
        catalog = await self._catalog()
        entry = catalog.entry(statement.name)
        if entry is None:
            raise SqlError(
                f"Unknown topic, stream or table {statement.name!r}."
                + did_you_mean(statement.name, catalog.names)
            )
        if entry.topic not in catalog.topics:
            raise SqlError(missing_topic(entry))
        return await describe(
            self.broker, entry.topic, entry.source, statement.extended, self.settings
        )

    async def _analyze(self, statement: QueryStatement) -> tuple[tuple[ScanSpec, ...], list[str]]:
        scans, entries = await self._bind(statement)
        return scans, [e.topic for e in entries]

    async def _bind(self, statement: QueryStatement) -> tuple[tuple[ScanSpec, ...], list[Entry]]:
        """The scan of each table reference and what it reads (a topic, or a declared source
        typing one); a declared source whose topic was deleted is an error, not an empty read."""
        catalog = await self._catalog()
        analysis = await off_loop(analyze, statement, catalog.columns, catalog.names)
        entries = [catalog.entry(spec.table) for spec in analysis.scans]
        for entry in entries:
            assert entry is not None  # analyze refused unknown names
            if entry.topic not in catalog.topics:
                raise SqlError(missing_topic(entry))
        return analysis.scans, entries  # type: ignore[return-value]

    async def _explain(self, statement: QueryStatement) -> SqlResult:
        scans, entries = await self._bind(statement)
        sql = await off_loop(to_duckdb, statement, [relation_name(s.ref) for s in scans])
        counted = len(entries) == 1 and counts_from_offsets(statement, entries[0].source)
        if counted:
            sql = "none: COUNT(*) is the number of offsets in the scanned ranges"
        return await off_loop(explain, statement, scans, [e.topic for e in entries], sql)

    async def _query(self, statement: QueryStatement) -> SqlResult:
        prepared = await self._prepare(statement)
        counted = count_from_offsets(statement, prepared)
        return counted if counted is not None else await self._run(prepared)

    async def _prepare(self, statement: QueryStatement) -> PreparedQuery:
        """Binds the statement and opens its scans: the log as of now, nothing read yet."""
        scans, entries = await self._bind(statement)
        relations = [relation_name(s.ref) for s in scans]
        opened: list[TopicScan] = []
        columns = scan_columns(statement.ast)  # companions are read for these only
        for spec, entry in zip(scans, entries, strict=True):
            scan = await open_scan(
                self.broker.manager,
                engine_spec(spec, entry.topic),
                max_bytes_in_flight=self.settings.scan_bytes_in_flight,
                # A declared source decodes records itself: it gets every column.
                columns=columns if entry.source is None else None,
            )
            opened.append(scan)
        sources = tuple(e.source for e in entries)
        sql = await off_loop(to_duckdb, statement, relations)
        return PreparedQuery(sql, relations, opened, sources)

    def _register_relations(self, session: DuckDBSession, prepared: PreparedQuery) -> None:
        """Makes each opened scan queryable under its relation name (runs on the query thread)."""
        sources = prepared.sources or (None,) * len(prepared.relations)
        for relation, scan, source in zip(prepared.relations, prepared.scans, sources, strict=True):
            if source is None:
                session.register_topic(relation, scan.reader())
            else:
                register_source(session, relation, scan.reader(), source)

    async def _run(self, prepared: PreparedQuery) -> SqlResult:
        """Runs to at most ``row_limit`` rows; a cancelled caller interrupts DuckDB."""
        worker = SessionThread(DuckDBSession(self.settings))

        def run():
            self._register_relations(worker.session, prepared)
            return worker.session.execute(prepared.sql)

        try:
            result = await worker.call(run)
        except QueryError as exc:
            raise prepared.scan_failure(exc) from exc
        finally:
            worker.close()
        answer = from_arrow(result.table, result.truncated, result.elapsed_ms)
        return dataclasses.replace(answer, stats=prepared.stats())
