"""How every unary call reports failure: one decorator maps exceptions to a gRPC status."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from streamhouse.broker.rpc.errors import map_error
from streamhouse.broker.service import metrics

Response = TypeVar("Response")


async def abort(context: grpc.aio.ServicerContext, api: str, exc: BaseException) -> None:
    """Ends the call with the status ``exc`` maps to (raises, as grpc's abort does)."""
    mapped = map_error(exc)
    metrics.REQUEST_ERRORS.labels(api, mapped.reason).inc()
    await context.abort(mapped.code, mapped.message, trailing_metadata=mapped.trailers())


def unary(api: str) -> Callable[[Callable[..., Awaitable[Response]]], Callable[..., Any]]:
    """Wraps a servicer method: domain exceptions become statuses with reason trailers."""

    def wrap(method: Callable[..., Awaitable[Response]]) -> Callable[..., Any]:
        @functools.wraps(method)
        async def call(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Response:
            try:
                return await method(self, request, context)
            except (grpc.aio.AbortError, KeyboardInterrupt):
                raise
            except Exception as exc:
                await abort(context, api, exc)
                raise  # unreachable: abort raises

        return call

    return wrap
