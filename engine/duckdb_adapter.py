"""The one place StreamHouse talks to DuckDB: a locked-down connection per query.

Each query gets its own connection to an in-memory database with no access to host files or the
network (``enable_external_access=false``), no extension installed or loaded on its own, no
scanning of Python variables by name, a memory limit and a thread count; the configuration is
locked, so SQL cannot ``SET`` any of it back. What the query may read is only what was registered:
Arrow readers or tables (a scan's ``RecordBatchReader`` is single use, so a query may read a
registered scan once).

Topics are registered with :meth:`DuckDBSession.register_topic`: the raw Arrow columns stay
under ``<name>__raw`` and ``<name>`` is a view where ``key`` and ``value`` are VARCHAR when the
bytes are valid UTF-8 and NULL otherwise, with the untouched bytes in ``key_bytes`` and
``value_bytes`` (SQL needs one type per column; text is what people query, bytes stay reachable).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Final

import duckdb
import pyarrow as pa

GIB: Final = 1024**3


@dataclass(frozen=True)
class DuckDBSettings:
    """Limits of one query (issue 5: 10,000 rows, 30 s, a memory budget).

    ``memory_limit_bytes`` is the query's whole budget: DuckDB's own memory gets
    ``1 - scan_share`` of it and the scans' decoded pieces waiting for DuckDB get the rest
    (``scan_bytes_in_flight``), because Arrow data handed to DuckDB is outside its accounting.
    """

    memory_limit_bytes: int = GIB
    threads: int = 2
    row_limit: int = 10_000
    timeout_s: float = 30.0
    rows_per_batch: int = 2048
    stream_rows_per_batch: int = 16_384  # fewer, larger batches when nothing is cut off
    scan_share: float = 0.25
    #: Where DuckDB spills sorts and joins bigger than its memory; None is DuckDB's default,
    #: ``.tmp`` in the working directory, so the server passes a folder of its data dir.
    spill_dir: str | None = None

    @property
    def duckdb_memory_bytes(self) -> int:
        return max(1, int(self.memory_limit_bytes * (1 - self.scan_share)))

    @property
    def scan_bytes_in_flight(self) -> int:
        return max(1, self.memory_limit_bytes - self.duckdb_memory_bytes)


@dataclass(frozen=True)
class QueryResult:
    """At most ``row_limit`` rows; ``truncated`` says the query had more."""

    table: pa.Table
    truncated: bool
    elapsed_ms: float


class QueryError(Exception):
    """DuckDB refused or failed the query; the message is DuckDB's."""


class QueryTimeoutError(QueryError):
    """The query ran past its timeout and was interrupted."""


class QueryCancelledError(QueryError):
    """The query was cancelled by its client."""


class QueryMemoryError(QueryError):
    """The query needed more memory than its budget; the message says how to narrow it."""


_OUT_OF_MEMORY = "Out of Memory Error"


def describe_memory_limit(limit_bytes: int) -> str:
    return f"{limit_bytes / 2**20:.0f} MiB"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_DATABASES: dict[tuple[int, int, str | None], duckdb.DuckDBPyConnection] = {}
_DATABASES_LOCK = threading.Lock()


def _database(settings: DuckDBSettings) -> duckdb.DuckDBPyConnection:
    """The process's locked-down in-memory database for these limits, opened once.

    Opening a DuckDB database costs ~30 ms, a connection to an open one ~0.1 ms, so every
    query gets its own connection (``cursor()``) to one shared database: what a query
    registers and its TEMP views are its connection's alone, while the memory limit, threads
    and spill directory are the database's, shared by the queries running at once.
    """
    key = (settings.duckdb_memory_bytes, settings.threads, settings.spill_dir)
    with _DATABASES_LOCK:
        database = _DATABASES.get(key)
        if database is None:
            database = duckdb.connect(
                ":memory:",
                config={
                    "enable_external_access": False,
                    "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False,
                    "allow_community_extensions": False,
                    "python_enable_replacements": False,
                    "memory_limit": f"{settings.duckdb_memory_bytes}B",
                    "threads": settings.threads,
                    **({"temp_directory": settings.spill_dir} if settings.spill_dir else {}),
                },
            )
            # Before the lock: times without a zone are UTC, as the SQL pushdown reads them.
            database.execute("SET GLOBAL TimeZone = 'UTC'")
            database.execute("SET lock_configuration = true")
            _DATABASES[key] = database
        return database


class DuckDBSession:
    """One locked-down connection for one query; use as a context manager."""

    def __init__(self, settings: DuckDBSettings | None = None) -> None:
        self.settings = settings or DuckDBSettings()
        self._con = _database(self.settings).cursor()
        self._why_interrupted: type[QueryError] | None = None

    def __enter__(self) -> DuckDBSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()

    def register(self, name: str, data: pa.RecordBatchReader | pa.Table) -> None:
        """Makes ``data`` queryable as ``name`` (no copy)."""
        self._con.register(name, data)

    def register_topic(self, name: str, reader: pa.RecordBatchReader | pa.Table) -> None:
        """Registers a scan as ``name``, with text ``key``/``value`` (see the module notes)."""
        raw = f"{name}__raw"
        self.register(raw, reader)
        self._con.execute(
            f'CREATE TEMP VIEW {_quote(name)} AS SELECT partition, "offset", "timestamp", '
            "TRY(decode(key)) AS key, TRY(decode(value)) AS value, headers, "
            f"key AS key_bytes, value AS value_bytes FROM {_quote(raw)}"
        )

    def execute(self, sql: str) -> QueryResult:
        """Runs ``sql`` and returns at most ``row_limit`` rows.

        Raises:
            QueryTimeoutError: it ran longer than ``timeout_s``.
            QueryCancelledError: :meth:`cancel` was called.
            QueryMemoryError: it needed more than DuckDB's share of the memory budget.
            QueryError: DuckDB refused it (syntax, permissions, ...).
        """
        started = time.monotonic()
        limit = self.settings.row_limit
        batches: list[pa.RecordBatch] = []
        rows = 0
        with self.stream(sql, self.settings.rows_per_batch) as result:
            while rows <= limit and (batch := result.next_batch()) is not None:
                batches.append(batch)
                rows += batch.num_rows
            table = pa.Table.from_batches(batches, schema=result.schema)
        elapsed = (time.monotonic() - started) * 1000
        return QueryResult(table.slice(0, limit), rows > limit, elapsed)

    def stream(self, sql: str, rows_per_batch: int | None = None) -> ResultStream:
        """Starts ``sql`` and returns its result batch by batch, with no row limit.

        The timeout covers the whole stream, up to :meth:`ResultStream.close`. Raises like
        :meth:`execute` here (errors before the first row) and from ``next_batch`` (after).
        """
        rows_per_batch = rows_per_batch or self.settings.stream_rows_per_batch
        timer = threading.Timer(self.settings.timeout_s, self._interrupt, (QueryTimeoutError,))
        timer.daemon = True
        timer.start()
        try:
            # A relation streams its rows as Arrow without the DB-API result's extra copy;
            # statements without a result (SET, CREATE VIEW) run at once and give None.
            relation = self._con.sql(sql)
            reader = None
            if relation is not None:
                reader = relation.to_arrow_reader(rows_per_batch)
        except duckdb.Error as exc:
            timer.cancel()
            raise self._error(exc) from exc
        except BaseException:
            timer.cancel()
            raise
        return ResultStream(self, reader, timer)

    def _error(self, exc: BaseException) -> QueryError:
        """What a DuckDB failure means to the client: interrupted, out of memory or refused."""
        reason = self._why_interrupted
        if reason is not None:
            what = "timed out" if reason is QueryTimeoutError else "was cancelled"
            if reason is QueryTimeoutError:
                what += f" after {self.settings.timeout_s:g} s"
            return reason(f"query {what}")
        message = str(exc)
        if isinstance(exc, duckdb.OutOfMemoryException) or _OUT_OF_MEMORY in message:
            budget = describe_memory_limit(self.settings.memory_limit_bytes)
            return QueryMemoryError(
                f"query exceeded its memory budget of {budget} "
                f"(DuckDB: {message.splitlines()[0]}). Narrow it: filter on partition, "
                '"offset", timestamp or key so fewer segments are read, aggregate instead of '
                "returning raw rows, or group by fewer distinct values."
            )
        return QueryError(message)

    def cancel(self) -> None:
        """Interrupts the running query (from any thread); it raises QueryCancelledError."""
        self._interrupt(QueryCancelledError)

    def _interrupt(self, reason: type[QueryError]) -> None:
        self._why_interrupted = self._why_interrupted or reason
        self._con.interrupt()


class ResultStream:
    """The batches of one running query; ``next_batch`` blocks, so call it off the event loop."""

    def __init__(
        self, session: DuckDBSession, reader: pa.RecordBatchReader | None, timer: threading.Timer
    ) -> None:
        self._session = session
        self._reader = reader
        self._timer = timer
        self.schema = reader.schema if reader is not None else pa.schema([])

    def __enter__(self) -> ResultStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next_batch(self) -> pa.RecordBatch | None:
        """The next batch, or None at the end.

        Raises:
            QueryError: as :meth:`DuckDBSession.execute`; DuckDB's Arrow reader raises its
                errors (an interrupt too) as Arrow/OS errors, mapped here the same way.
        """
        if self._reader is None:
            return None
        if self._session._why_interrupted is not None:
            # An interrupt that arrived between two reads is not always seen by the next one.
            raise self._session._error(RuntimeError("interrupted"))
        try:
            return self._reader.read_next_batch()
        except StopIteration:
            return None
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            raise self._session._error(exc) from exc

    def close(self) -> None:
        self._timer.cancel()
        if self._reader is not None:
            self._reader.close()
