"""The body of `POST /api/v1/sql/stream`: a query's rows as they come, NDJSON or SSE.

NDJSON (the default, ``application/x-ndjson``): a header line ``{"columns": [...]}``, one JSON
array per row, and a last line ``{"row_count", "elapsed_ms", "stats"}``, or ``{"error": {...}}``
when the query fails after its first byte (the status is 200 by then). SSE (``Accept:
text/event-stream``): events ``columns``, ``rows`` (a JSON array of the rows of one batch),
then ``end`` or ``error`` with the same payloads.

Memory stays bounded: one Arrow batch at a time is encoded (``json_lines``) and sent before the
next is fetched, so a slow reader slows DuckDB instead of filling the server.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send
from streamhouse.engine.query.results import json_lines
from streamhouse.engine.query.running import QueryStream

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class NdjsonFraming:
    media_type = NDJSON

    def header(self, columns: list[dict[str, str]]) -> bytes:
        return _json({"columns": columns}) + b"\n"

    def rows(self, lines: bytes) -> bytes:
        return lines

    def end(self, summary: dict[str, Any]) -> bytes:
        return _json(summary) + b"\n"

    def error(self, error: dict[str, Any]) -> bytes:
        return _json({"error": error}) + b"\n"


class SseFraming:
    media_type = SSE

    @staticmethod
    def _event(name: str, data: bytes) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"

    def header(self, columns: list[dict[str, str]]) -> bytes:
        return self._event("columns", _json({"columns": columns}))

    def rows(self, lines: bytes) -> bytes:
        # JSON text never holds a raw newline (strings escape it): the lines join into an array.
        return self._event("rows", b"[" + lines[:-1].replace(b"\n", b",") + b"]")

    def end(self, summary: dict[str, Any]) -> bytes:
        return self._event("end", _json(summary))

    def error(self, error: dict[str, Any]) -> bytes:
        return self._event("error", _json({"error": error}))


def framing_for(accept: str | None) -> NdjsonFraming | SseFraming:
    return SseFraming() if accept and SSE in accept else NdjsonFraming()


async def stream_body(
    stream: QueryStream,
    framing: NdjsonFraming | SseFraming,
    describe_error: Callable[[BaseException], tuple[str, dict[str, Any]]],
    finished: Callable[[str], None],
) -> AsyncIterator[bytes]:
    """Yields the framed result; ``finished(outcome)`` runs once however the stream ends.

    ``describe_error`` turns an exception into (metrics outcome, error body).
    """
    outcome = "cancelled"  # unless it ends below: the client went away mid-stream
    try:
        yield framing.header(stream.columns)
        try:
            async for batch in stream.batches():
                lines = json_lines(batch)
                if lines:
                    yield framing.rows(lines)
        except Exception as exc:
            outcome, error = describe_error(exc)
            yield framing.error(error)
            return
        summary = {
            "row_count": stream.row_count,
            "elapsed_ms": round(stream.elapsed_ms, 3),
            "stats": stream.stats(),
        }
        outcome = "ok"
        yield framing.end(summary)
    finally:
        stream.close()
        finished(outcome)


class DisconnectAwareStream(StreamingResponse):
    """A streaming response that stops producing as soon as the client disconnects.

    Starlette only notices a gone client when a send fails under ASGI 2.4, which a query busy
    computing its next batch may not do for a long time; this always listens for
    ``http.disconnect`` and cancels the producer then (which interrupts DuckDB).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def produce() -> None:
                    with contextlib.suppress(OSError):  # the client went away mid-send
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(produce)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            body = self.body_iterator
            if hasattr(body, "aclose"):
                with contextlib.suppress(BaseException):
                    await body.aclose()  # type: ignore[union-attr]
