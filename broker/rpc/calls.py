"""How every call reports failure: exceptions map to a gRPC status; garbage bytes are refused.

grpcio answers an undecodable request with UNKNOWN; the interceptor below turns the decode
failure into a :class:`MalformedRequest` value instead, which the call wrappers refuse with
INVALID_ARGUMENT like any other bad input.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from streamhouse.broker.rpc.errors import map_error
from streamhouse.broker.service import metrics

Response = TypeVar("Response")


class MalformedRequestError(ValueError):
    """The request bytes are not a valid protobuf message of the method's type."""


class MalformedRequest:
    """Stands in for a request whose bytes could not be decoded."""

    def __init__(self, error: Exception) -> None:
        self.error = MalformedRequestError(f"malformed request message: {error}")


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:
            return MalformedRequest(exc)

    return decode


class MalformedRequestInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every method's request decoder so that decoding never raises."""

    async def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        handler = await continuation(handler_call_details)
        if handler is None or not hasattr(handler, "_replace"):
            return handler
        return handler._replace(request_deserializer=_tolerant(handler.request_deserializer))


def check_request(request: Any) -> None:
    """Raises for a request the interceptor could not decode."""
    if isinstance(request, MalformedRequest):
        raise request.error


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
                check_request(request)
                return await method(self, request, context)
            except (grpc.aio.AbortError, KeyboardInterrupt):
                raise
            except Exception as exc:
                await abort(context, api, exc)
                raise  # unreachable: abort raises

        return call

    return wrap
