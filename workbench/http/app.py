"""Builds the FastAPI app around a log manager; no module-level singletons."""

from __future__ import annotations

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from streamhouse.broker.log import LogManager


def create_app(manager: LogManager) -> FastAPI:
    app = FastAPI(title="StreamHouse", version="0.1.0", docs_url="/docs")
    app.state.manager = manager

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

    return app
