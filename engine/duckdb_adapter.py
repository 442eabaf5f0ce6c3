"""The one place StreamHouse talks to DuckDB: a locked-down connection per query.

Each query gets a fresh in-memory connection with no access to host files or the network
(``enable_external_access=false``), no extension installed or loaded on its own, no scanning of
Python variables by name, a memory limit and a thread count; then the configuration is locked,
so SQL cannot ``SET`` any of it back. What the query may read is only what was registered:
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

import duckdb
import pyarrow as pa


@dataclass(frozen=True)
class DuckDBSettings:
    """Limits of one query (issue 5: 10,000 rows, 30 s, a memory budget)."""

    memory_limit: str = "1GB"
    threads: int = 2
    row_limit: int = 10_000
    timeout_s: float = 30.0
    rows_per_batch: int = 2048


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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckDBSession:
    """One locked-down connection for one query; use as a context manager."""

    def __init__(self, settings: DuckDBSettings | None = None) -> None:
        self.settings = settings or DuckDBSettings()
        self._con = duckdb.connect(
            ":memory:",
            config={
                "enable_external_access": False,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "allow_community_extensions": False,
                "python_enable_replacements": False,
                "memory_limit": self.settings.memory_limit,
                "threads": self.settings.threads,
            },
        )
        # Before the lock: times without a zone are UTC, as the SQL layer's pushdown reads them.
        self._con.execute("SET TimeZone = 'UTC'")
        self._con.execute("SET lock_configuration = true")
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
            f'CREATE VIEW {_quote(name)} AS SELECT partition, "offset", "timestamp", '
            "TRY(decode(key)) AS key, TRY(decode(value)) AS value, headers, "
            f"key AS key_bytes, value AS value_bytes FROM {_quote(raw)}"
        )

    def execute(self, sql: str) -> QueryResult:
        """Runs ``sql`` and returns at most ``row_limit`` rows.

        Raises:
            QueryTimeoutError: it ran longer than ``timeout_s``.
            QueryCancelledError: :meth:`cancel` was called.
            QueryError: DuckDB refused it (syntax, permissions, memory, ...).
        """
        started = time.monotonic()
        limit = self.settings.row_limit
        timer = threading.Timer(self.settings.timeout_s, self._interrupt, (QueryTimeoutError,))
        timer.daemon = True
        timer.start()
        try:
            # A relation streams its rows as Arrow without the DB-API result's extra copy;
            # statements without a result (SET, CREATE VIEW) run at once and give None.
            relation = self._con.sql(sql)
            if relation is None:
                table, truncated = pa.table({}), False
            else:
                table, truncated = self._fetch(relation, limit)
        except duckdb.Error as exc:
            reason = self._why_interrupted
            if reason is not None:
                what = "timed out" if reason is QueryTimeoutError else "was cancelled"
                raise reason(f"query {what}") from exc
            raise QueryError(str(exc)) from exc
        finally:
            timer.cancel()
        return QueryResult(table, truncated, (time.monotonic() - started) * 1000)

    def _fetch(self, relation: duckdb.DuckDBPyRelation, limit: int) -> tuple[pa.Table, bool]:
        """Reads result batches until ``limit + 1`` rows are seen, then stops reading."""
        reader = relation.to_arrow_reader(self.settings.rows_per_batch)
        batches: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            if rows > limit:
                break
        table = pa.Table.from_batches(batches, schema=reader.schema)
        return table.slice(0, limit), rows > limit

    def cancel(self) -> None:
        """Interrupts the running query (from any thread); it raises QueryCancelledError."""
        self._interrupt(QueryCancelledError)

    def _interrupt(self, reason: type[QueryError]) -> None:
        self._why_interrupted = self._why_interrupted or reason
        self._con.interrupt()
