"""`streamhouse serve`: one asyncio process hosting the log, gRPC and the HTTP app.

Order of start: the HTTP listener comes up first so `/health` answers and `/ready` says 503
during recovery; then the log starts (migrations, WAL recovery, leases), the group coordinator
and the gRPC listener, and `/ready` turns 200. SIGTERM/SIGINT stop accepting gRPC and HTTP, seal
and commit open segments, release leases, exit 0, within `shutdown_timeout_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from streamhouse.broker.groups.coordinator import GroupCoordinator
from streamhouse.broker.kafka.context import KafkaCluster, KafkaSettings
from streamhouse.broker.kafka.server import KafkaServer
from streamhouse.broker.log import LogConfig, LogManager
from streamhouse.broker.rpc.server import build_grpc_server
from streamhouse.broker.service import BrokerService, GroupService
from streamhouse.broker.service.collectors import register_log_collector
from streamhouse.broker.wal import SyncPolicy
from streamhouse.engine.duckdb_adapter import DuckDBSettings
from streamhouse.workbench.http.app import create_app
from streamhouse.workbench.http.sql_runtime import configure_sql
from streamhouse.workbench.settings import ServerSettings

log = logging.getLogger("streamhouse.server")


class _HttpServer(uvicorn.Server):
    """Uvicorn without its own signal handling: the server command owns shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def log_config(settings: ServerSettings) -> LogConfig:
    return LogConfig(
        data_dir=settings.data_dir,
        agent_id=settings.agent_id,
        advertised_address=f"{settings.advertised_host or settings.host}:{settings.grpc_port}",
        kafka_address=kafka_settings(settings).advertised_address,
        wal_sync_policy=SyncPolicy(settings.wal_sync),
        wal_sync_interval_ms=settings.wal_sync_interval_ms,
        wal_max_bytes=settings.wal_max_bytes,
        cache_max_bytes=settings.cache_max_bytes,
        lease_ttl_ms=settings.lease_ttl_ms,
        commit_on_all=acks_all_commits(settings),
    )


def kafka_settings(settings: ServerSettings) -> KafkaSettings:
    return KafkaSettings(
        host=settings.host,
        port=settings.kafka_port,
        advertised_host=settings.advertised_host,
        auto_create_topics=settings.kafka_auto_create_topics,
        default_partitions=settings.kafka_default_partitions,
        max_request_bytes=settings.kafka_max_request_bytes,
        sasl_users=dict(settings.kafka_sasl_users),
        connections_max_idle_ms=settings.kafka_connections_max_idle_ms,
    )


def sql_settings(settings: ServerSettings) -> DuckDBSettings:
    return DuckDBSettings(
        memory_limit_bytes=settings.sql_memory_limit,
        row_limit=settings.sql_row_limit,
        timeout_s=settings.sql_timeout_s,
        spill_dir=str(Path(settings.data_dir) / "sql-spill"),
    )


def acks_all_commits(settings: ServerSettings) -> bool:
    """Whether acks=all waits for the object-store commit (see ``ServerSettings.acks_all``)."""
    if settings.acks_all == "auto":
        return settings.metadata_url.startswith(("postgresql:", "postgres:"))
    return settings.acks_all == "object-store"


async def serve(settings: ServerSettings) -> None:
    """Runs until SIGTERM or SIGINT, then shuts down in order."""
    manager = LogManager.from_urls(
        log_config(settings),
        metadata_url=settings.metadata_url or None,
        object_store_url=settings.object_store or None,
    )
    register_log_collector(manager)
    app = create_app(manager)
    configure_sql(app, sql_settings(settings), settings.sql_max_concurrent)
    http = _HttpServer(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.http_port,
            log_config=None,
            lifespan="off",
            access_log=False,
        )
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    http_task = asyncio.create_task(http.serve(), name="http")
    # Like Kafka's group.initial.rebalance.delay.ms: members starting together join one generation.
    coordinator = GroupCoordinator(manager.metadata, initial_rebalance_delay_ms=300)
    grpc_server = None
    kafka_server = None
    try:
        await manager.start()
        await coordinator.start()
        broker = BrokerService(manager)
        groups = GroupService(broker, coordinator)
        grpc_server = build_grpc_server(broker, groups, f"{settings.host}:{settings.grpc_port}")
        await grpc_server.start()
        kafka_server = KafkaServer(
            KafkaCluster(broker, groups, coordinator, kafka_settings(settings))
        )
        await kafka_server.start()
        app.state.broker, app.state.groups = broker, groups
        log.info(
            "ready agent=%s kafka=%s:%d grpc=%s:%d http=%s:%d data_dir=%s",
            manager.agent_id,
            settings.host,
            settings.kafka_port,
            settings.host,
            settings.grpc_port,
            settings.host,
            settings.http_port,
            settings.data_dir,
        )
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({stopping, http_task}, return_when=asyncio.FIRST_COMPLETED)
        if http_task in done and http_task.exception() is not None:
            raise http_task.exception()  # type: ignore[misc]
        log.info("shutting down")
    finally:
        if kafka_server is not None:
            await kafka_server.close(grace_s=min(5.0, settings.shutdown_timeout_s / 2))
        if grpc_server is not None:
            # Stop accepting; in-flight calls get a short grace to finish before the log closes.
            await grpc_server.stop(grace=min(5.0, settings.shutdown_timeout_s / 2))
        await coordinator.close()
        http.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(http_task, timeout=5)
        if manager.ready:
            await manager.close(timeout_s=settings.shutdown_timeout_s)
        log.info("stopped")
