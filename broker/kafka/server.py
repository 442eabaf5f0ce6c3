"""The Kafka listener: accepts connections and serves each in its own task."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from streamhouse.broker.kafka import metrics
from streamhouse.broker.kafka.connection import KafkaConnection
from streamhouse.broker.kafka.context import KafkaCluster

log = logging.getLogger("streamhouse.kafka")


class KafkaServer:
    def __init__(self, cluster: KafkaCluster) -> None:
        self.cluster = cluster
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], KafkaConnection] = {}

    @property
    def port(self) -> int:
        """The bound port (useful when the settings asked for port 0)."""
        assert self._server is not None and self._server.sockets
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        settings = self.cluster.settings
        self._server = await asyncio.start_server(
            self._accept, settings.host, settings.port, reuse_address=True, limit=1 << 20
        )

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = KafkaConnection(self.cluster, reader, writer)
        self._connections[task] = connection
        metrics.CONNECTIONS.inc()
        try:
            await connection.serve()
        except Exception:
            log.exception("Kafka connection failed")
        finally:
            metrics.CONNECTIONS.dec()
            self._connections.pop(task, None)

    async def close(self, grace_s: float = 5.0) -> None:
        """Stops accepting, lets in-flight requests finish for ``grace_s``, then drops the rest."""
        if self._server is None:
            return
        self._server.close()
        for task, connection in list(self._connections.items()):
            if not connection.busy:
                task.cancel()
        if self._connections:
            _, pending = await asyncio.wait(list(self._connections), timeout=grace_s)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), timeout=1)
