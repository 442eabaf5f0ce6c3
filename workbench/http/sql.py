"""`POST /api/v1/sql`: one point-in-time SQL statement, answered with a bounded result.

The body shape is DESIGN.md's. Errors keep the REST API's envelope
(`{"error": {"reason", "message", ...}}`); a SQL error adds the 1-based `line` and `column`
of the offending token (null when the error is not tied to one), so a client can point at it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from streamhouse.engine.duckdb_adapter import QueryCancelledError, QueryError, QueryTimeoutError
from streamhouse.engine.query import QueryService
from streamhouse.sql import SqlError
from streamhouse.workbench.http.errors import API_PREFIX, ERROR_RESPONSES, ServiceRoute
from streamhouse.workbench.http.services import Broker

MAX_SQL_CHARS = 1_000_000

router = APIRouter(
    prefix=API_PREFIX, tags=["sql"], route_class=ServiceRoute, responses=ERROR_RESPONSES
)


class SqlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(min_length=1, max_length=MAX_SQL_CHARS, description="one statement")


class SqlColumn(BaseModel):
    name: str
    type: str = Field(description="DuckDB type name: BIGINT, VARCHAR, TIMESTAMP, ...")


class SqlResponse(BaseModel):
    columns: list[SqlColumn]
    rows: list[list[Any]] = Field(
        description="JSON values: timestamps ISO-8601 UTC, bytes base64, key/value text or null"
    )
    row_count: int
    truncated: bool = Field(description="the query had more rows than the limit (10,000)")
    elapsed_ms: float


def _error(status: int, reason: str, message: str, **extra: Any) -> JSONResponse:
    body = {"reason": reason, "message": message, "leader_address": "", **extra}
    return JSONResponse({"error": body}, status_code=status)


@router.post("/sql", response_model=SqlResponse)
async def run_sql(body: SqlRequest, broker: Broker) -> JSONResponse:
    """Runs a SELECT, SHOW TOPICS, DESCRIBE or EXPLAIN over the log as of now."""
    try:
        result = await QueryService(broker).execute(body.sql)
    except SqlError as exc:
        return _error(400, "INVALID_SQL", exc.message, line=exc.line, column=exc.column)
    except QueryTimeoutError as exc:
        return _error(504, "QUERY_TIMEOUT", str(exc))
    except QueryCancelledError as exc:
        return _error(499, "QUERY_CANCELLED", str(exc))
    except QueryError as exc:
        return _error(400, "QUERY_FAILED", str(exc), line=None, column=None)
    return JSONResponse(result.document())
