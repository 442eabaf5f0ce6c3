"""`POST /api/v1/sql` over an asyncio HTTP client, so a running query can be cancelled.

Cancelling the awaiting task closes the HTTP connection mid-request; the server takes the
disconnect as the signal to abort the query. Failures come back as two exception types the
callers map to exit codes: `ServerUnreachable` (3) and `SqlFailed` (1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

DEFAULT_HTTP = "http://127.0.0.1:8080"


class ServerUnreachable(Exception):
    """No HTTP answer at all: connection refused, reset, or timed out."""


@dataclass
class SqlFailed(Exception):
    """The server answered with an error; `line`/`column` are 1-based within the statement."""

    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        return self.message


class SqlClient:
    """One keep-alive connection pool to an agent's HTTP API for a whole shell session."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def run(self, statement: str) -> dict[str, Any]:
        """The API's result document for one statement."""
        try:
            response = await self._http.post("/api/v1/sql", json={"sql": statement})
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"cannot reach {self.base_url}: {_describe(exc)}") from None
        try:
            document = response.json()
        except ValueError:
            raise SqlFailed(f"HTTP {response.status_code}: {response.text[:200]}") from None
        if response.status_code != 200:
            raise _failure(response, document)
        return document

    async def aclose(self) -> None:
        await self._http.aclose()


def _failure(response: httpx.Response, document: Any) -> SqlFailed:
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return SqlFailed(f"HTTP {response.status_code}: {response.text[:200]}")
    message = str(error.get("message") or error.get("reason") or response.status_code)
    line, column = error.get("line"), error.get("column")
    if not (isinstance(line, int) and isinstance(column, int)):
        line = column = None
    return SqlFailed(message, line, column)


def _describe(exc: httpx.TransportError) -> str:
    return str(exc) or type(exc).__name__
