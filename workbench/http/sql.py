"""`POST /api/v1/sql` (a bounded answer) and `POST /api/v1/sql/stream` (every row, streamed).

The body shape is DESIGN.md's. Errors keep the REST API's envelope
(`{"error": {"reason", "message", ...}}`); a SQL error adds the 1-based `line` and `column` of
the offending token and its 0-based character `position` in the statement (null when the error
is not tied to one), so a client can point at it. Limits (rows, timeout, memory, queries at
once) are the server's `sql_*` settings (``sql_runtime.py``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response
from streamhouse.broker.service import metrics
from streamhouse.engine.duckdb_adapter import (
    QueryCancelledError,
    QueryError,
    QueryMemoryError,
    QueryTimeoutError,
)
from streamhouse.engine.query.running import QueryStream
from streamhouse.sql import SqlError
from streamhouse.workbench.http.errors import API_PREFIX, ERROR_RESPONSES, ServiceRoute, error_info
from streamhouse.workbench.http.services import Broker
from streamhouse.workbench.http.sql_runtime import ClientGoneError, Sql, unless_disconnected
from streamhouse.workbench.http.sql_stream import (
    NDJSON,
    SSE,
    DisconnectAwareStream,
    framing_for,
    stream_body,
)

MAX_SQL_CHARS = 1_000_000
#: The largest body that can hold MAX_SQL_CHARS characters (JSON may escape one as 6 bytes);
#: anything bigger is refused with 413 before it is read into memory.
MAX_BODY_BYTES = 6 * MAX_SQL_CHARS + 1024
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that went away; nobody reads it

SQL_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    429: {"description": "as many SQL queries run as the server allows (TOO_MANY_QUERIES)"},
    504: {"description": "the query ran past the timeout (QUERY_TIMEOUT)"},
}

router = APIRouter(
    prefix=API_PREFIX, tags=["sql"], route_class=ServiceRoute, responses=SQL_ERROR_RESPONSES
)


class SqlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(min_length=1, max_length=MAX_SQL_CHARS, description="one statement")


class SqlColumn(BaseModel):
    name: str
    type: str = Field(description="DuckDB type name: BIGINT, VARCHAR, TIMESTAMP, ...")


class ScanStatsBody(BaseModel):
    segments_read: int
    segments_skipped: int = Field(description="pruned by metadata (pushdown) without reading")
    companions_read: int
    bytes_read: int
    rows_scanned: int


class SqlResponse(BaseModel):
    columns: list[SqlColumn]
    rows: list[list[Any]] = Field(
        description="JSON values: timestamps ISO-8601 UTC, bytes base64, key/value text or null"
    )
    row_count: int
    truncated: bool = Field(description="the query had more rows than the limit (10,000)")
    elapsed_ms: float
    stats: ScanStatsBody | None = Field(
        None, description="what the query's scans read (absent for SHOW/DESCRIBE/EXPLAIN)"
    )


def position_of(sql: str, line: int | None, column: int | None) -> int | None:
    """The 0-based character offset of a 1-based line and column in ``sql``."""
    if line is None or column is None:
        return None
    lines = sql.split("\n")
    if not 1 <= line <= len(lines):
        return None
    return min(len(sql), sum(len(text) + 1 for text in lines[: line - 1]) + column - 1)


def describe_error(exc: BaseException, sql: str) -> tuple[int, str, dict[str, Any]]:
    """(HTTP status, metrics outcome, error body) of a failed query."""
    if isinstance(exc, SqlError):
        where = {
            "line": exc.line,
            "column": exc.column,
            "position": position_of(sql, exc.line, exc.column),
        }
        return 400, "invalid", _body("INVALID_SQL", exc.message, **where)
    if isinstance(exc, QueryTimeoutError):
        message = f"{exc}; narrow the query (a WHERE on partition, offset, timestamp or key)"
        return 504, "timeout", _body("QUERY_TIMEOUT", message)
    if isinstance(exc, QueryCancelledError):
        return CLIENT_CLOSED_REQUEST, "cancelled", _body("QUERY_CANCELLED", str(exc))
    if isinstance(exc, QueryMemoryError):
        return 400, "memory_limit", _body("QUERY_MEMORY_LIMIT", str(exc))
    if isinstance(exc, QueryError):
        return 400, "failed", _body("QUERY_FAILED", str(exc), line=None, column=None)
    status, info = error_info(exc)
    return status, "failed", info.model_dump()


def _body(reason: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"reason": reason, "message": message, "leader_address": "", **extra}


def _error_response(exc: BaseException, sql: str, api: str) -> tuple[str, JSONResponse]:
    status, outcome, body = describe_error(exc, sql)
    metrics.REQUEST_ERRORS.labels(api, body["reason"]).inc()
    return outcome, JSONResponse({"error": body}, status_code=status)


@router.post("/sql", response_model=SqlResponse, responses={499: {"description": "cancelled"}})
async def run_sql(body: SqlRequest, request: Request, broker: Broker, sql: Sql) -> Response:
    """Runs one statement (SELECT, SHOW, DESCRIBE, EXPLAIN, CREATE or DROP STREAM|TABLE).

    At most `sql_row_limit` rows (`truncated` says there were more). A client that disconnects
    cancels its query.
    """
    slot = sql.gate.enter()
    outcome = "cancelled"
    try:
        result = await unless_disconnected(request, sql.service(request).execute(body.sql))
        outcome = "ok"
        return JSONResponse(result.document())
    except ClientGoneError:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    except Exception as exc:
        outcome, response = _error_response(exc, body.sql, "rest_run_sql")
        return response
    finally:
        slot.leave(outcome)


@router.post(
    "/sql/stream",
    responses={
        200: {
            "description": "NDJSON: a {columns} line, one JSON array per row, then a "
            "{row_count, elapsed_ms, stats} or {error} line; SSE with Accept: text/event-stream",
            "content": {NDJSON: {}, SSE: {}},
        }
    },
)
async def stream_sql(body: SqlRequest, request: Request, broker: Broker, sql: Sql) -> Response:
    """Runs one statement and streams every row (no row limit; timeout and memory still apply).

    Errors before the first row are answered like `POST /sql`; later ones end the stream with
    an error line. A client that disconnects cancels its query.
    """
    slot = sql.gate.enter()
    try:
        stream: QueryStream = await unless_disconnected(
            request, sql.service(request).stream(body.sql)
        )
    except ClientGoneError:
        slot.leave("cancelled")
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    except Exception as exc:
        outcome, response = _error_response(exc, body.sql, "rest_stream_sql")
        slot.leave(outcome)
        return response
    framing = framing_for(request.headers.get("accept"))

    def mid_stream_error(exc: BaseException) -> tuple[str, dict[str, Any]]:
        _, outcome, error = describe_error(exc, body.sql)
        metrics.REQUEST_ERRORS.labels("rest_stream_sql", error["reason"]).inc()
        return outcome, error

    return DisconnectAwareStream(
        stream_body(stream, framing, mid_stream_error, slot.leave),
        media_type=framing.media_type,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
