"""One error format for the REST API, reusing the gRPC service's exception -> reason table.

The broker's exceptions are mapped once (``streamhouse.broker.rpc.errors.map_error``), so a
client sees the same machine-readable reason over gRPC and HTTP; only the status differs. Every
REST error body is ``{"error": {"reason", "message", "leader_address"}}``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import grpc
from fastapi import Request, Response
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError, ValidationException
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from streamhouse.broker.rpc.errors import map_error
from streamhouse.broker.service import metrics

API_PREFIX = "/api/v1"

_STATUS_BY_CODE: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.INTERNAL: 500,
}
# Reasons whose HTTP status says more than their gRPC code's.
_STATUS_BY_REASON: dict[str, int] = {"MESSAGE_TOO_LARGE": 413}


class ErrorInfo(BaseModel):
    reason: str
    message: str
    leader_address: str = ""


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorInfo


class ApiError(Exception):
    """An error the REST layer itself decides on (not ready, request too large, bad encoding)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def error_info(exc: BaseException) -> tuple[int, ErrorInfo]:
    """The HTTP status and error body fields for ``exc``."""
    if isinstance(exc, ApiError):
        return exc.status, ErrorInfo(reason=exc.reason, message=exc.message)
    mapped = map_error(exc)
    status = _STATUS_BY_REASON.get(mapped.reason) or _STATUS_BY_CODE.get(mapped.code, 500)
    info = ErrorInfo(
        reason=mapped.reason, message=mapped.message, leader_address=mapped.leader_address
    )
    return status, info


def error_response(status: int, info: ErrorInfo) -> JSONResponse:
    return JSONResponse(ErrorBody(error=info).model_dump(), status_code=status)


class ServiceRoute(APIRoute):
    """A route whose handler turns broker exceptions into error responses.

    Scoped to the REST routers (not installed app-wide) so other routes of the same app keep
    their own error handling. FastAPI's own validation and HTTP exceptions pass through to the
    app's handlers.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        api = f"rest_{self.name}"

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except (HTTPException, ValidationException):
                raise
            except Exception as exc:
                status, info = error_info(exc)
                metrics.REQUEST_ERRORS.labels(api, info.reason).inc()
                return error_response(status, info)

        return run


async def validation_error(request: Request, exc: Exception) -> Response:
    """Malformed JSON is 400, a well-formed body of the wrong shape is 422; both in our format.

    Only under ``/api/v1``: the rest of the app keeps FastAPI's default answer.
    """
    assert isinstance(exc, RequestValidationError)
    if not request.url.path.startswith(API_PREFIX + "/"):
        return await request_validation_exception_handler(request, exc)
    problems = exc.errors()
    malformed = any(p.get("type") == "json_invalid" for p in problems)
    described = "; ".join(
        f"{'.'.join(str(part) for part in p.get('loc', ()))}: {p.get('msg', 'invalid')}"
        for p in problems[:10]
    )
    message = ("malformed JSON body: " if malformed else "invalid request: ") + described
    status = 400 if malformed else 422
    return error_response(status, ErrorInfo(reason="INVALID_REQUEST", message=message))


_REASON_BY_HTTP_STATUS = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "MESSAGE_TOO_LARGE"}


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's own HTTP errors (no such route, unreadable body) in the REST error format."""
    assert isinstance(exc, HTTPException)
    if not request.url.path.startswith(API_PREFIX + "/"):
        return await http_exception_handler(request, exc)
    reason = _REASON_BY_HTTP_STATUS.get(exc.status_code) or (
        "INVALID_REQUEST" if exc.status_code < 500 else "INTERNAL"
    )
    response = error_response(exc.status_code, ErrorInfo(reason=reason, message=str(exc.detail)))
    response.headers.update(exc.headers or {})
    return response


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "malformed JSON or an invalid value (reason INVALID_REQUEST, INVALID_CONFIG, ...)",
        404: "unknown topic, partition or group",
        409: "already exists, or the group is not empty",
        422: "the body does not match the schema",
        503: "not ready yet (NOT_READY), or another agent leads (leader_address says which)",
    }.items()
}
