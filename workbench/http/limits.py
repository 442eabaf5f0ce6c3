"""A request-body ceiling enforced before FastAPI parses the JSON.

FastAPI reads and decodes the whole body before a handler runs, so a size check in the handler
comes after the memory is spent. This ASGI middleware refuses an oversized body with 413 from
its Content-Length, or as soon as the streamed bytes pass the limit (chunked uploads).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from streamhouse.workbench.http.errors import ErrorInfo, error_response


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, applies_to: Callable[[str], bool]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.applies_to = applies_to

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies_to(scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await self._refuse(
                    scope, receive, send, 400, "INVALID_REQUEST", "bad Content-Length"
                )
                return
            if int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body larger than {self.max_bytes} bytes"
        await self._refuse(scope, receive, send, 413, "MESSAGE_TOO_LARGE", message)

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, status: int, reason: str, message: str
    ) -> None:
        response = error_response(status, ErrorInfo(reason=reason, message=message))
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that yields the buffered body once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
