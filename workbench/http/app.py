"""Builds the FastAPI app around a log manager; no module-level singletons.

The REST resources are always mounted. They read their services from ``app.state`` per
request, so ``streamhouse serve`` can create the app before the log starts and assign
``app.state.broker`` / ``app.state.groups`` once they exist; until then they answer 503
NOT_READY.
"""

from __future__ import annotations

from fastapi import FastAPI, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.exceptions import HTTPException
from streamhouse.broker.log import LogManager
from streamhouse.broker.service import BrokerService, GroupService
from streamhouse.workbench.http import groups as group_routes
from streamhouse.workbench.http import records, sql, topics
from streamhouse.workbench.http.errors import API_PREFIX, http_error, validation_error
from streamhouse.workbench.http.limits import BodyLimit


def _is_records_path(path: str) -> bool:
    return path.startswith(f"{API_PREFIX}/topics/") and path.endswith("/records")


def _is_sql_path(path: str) -> bool:
    return path.startswith(f"{API_PREFIX}/sql")


def create_app(
    manager: LogManager, broker: BrokerService | None = None, groups: GroupService | None = None
) -> FastAPI:
    app = FastAPI(title="StreamHouse", version="0.1.0", docs_url="/docs")
    app.state.manager = manager
    app.state.broker = broker
    app.state.groups = groups
    app.state.round_robin = records.RoundRobin()

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    async def ready() -> JSONResponse:
        """Readiness: true once WAL recovery and lease acquisition are done."""
        is_ready = app.state.manager.ready
        return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        """Prometheus exposition of every StreamHouse collector."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    app.include_router(topics.router)
    app.include_router(records.router)
    app.include_router(group_routes.router)
    app.include_router(sql.router)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_middleware(BodyLimit, max_bytes=records.MAX_BODY_BYTES, applies_to=_is_records_path)
    app.add_middleware(BodyLimit, max_bytes=sql.MAX_BODY_BYTES, applies_to=_is_sql_path)
    return app
