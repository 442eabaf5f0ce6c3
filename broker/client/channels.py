"""One gRPC channel per agent, and unary calls that fail with the client's own exceptions.

Every client talks to several agents (partition leaders, group coordinators); a channel per
address multiplexes all of its calls over one HTTP/2 connection. Reconnect backoff is kept
short so a restarted server is found again within the retry budget instead of grpc's default
of up to two minutes.
"""

from __future__ import annotations

from typing import Any

import grpc
from streamhouse.broker.client.errors import from_rpc_error
from streamhouse.broker.rpc.v1 import broker_pb2_grpc

MAX_MESSAGE_BYTES = 128 * 1024 * 1024  # the server's own limit (broker/rpc/server.py)

_STUBS = {
    "admin": broker_pb2_grpc.AdminStub,
    "produce": broker_pb2_grpc.ProduceStub,
    "fetch": broker_pb2_grpc.FetchStub,
    "groups": broker_pb2_grpc.GroupsStub,
}


class Channels:
    """The channels of one client; must be used (and closed) on one event loop."""

    def __init__(self, *, reconnect_backoff_ms: int = 100, max_reconnect_backoff_ms: int = 2000):
        self._options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.initial_reconnect_backoff_ms", max(reconnect_backoff_ms, 1)),
            ("grpc.min_reconnect_backoff_ms", max(reconnect_backoff_ms, 1)),
            ("grpc.max_reconnect_backoff_ms", max(max_reconnect_backoff_ms, 1)),
            ("grpc.enable_retries", 0),  # the client retries itself, with its own policy
            ("grpc.keepalive_time_ms", 30_000),
        ]
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[tuple[str, str], Any] = {}
        self._closed = False

    def stub(self, address: str, service: str) -> Any:
        """The ``service`` ("admin", "produce", "fetch", "groups") stub for ``address``."""
        key = (address, service)
        stub = self._stubs.get(key)
        if stub is None:
            if self._closed:
                raise RuntimeError("the client is closed")
            channel = self._channels.get(address)
            if channel is None:
                channel = grpc.aio.insecure_channel(address, options=self._options)
                self._channels[address] = channel
            stub = self._stubs[key] = _STUBS[service](channel)
        return stub

    async def call(
        self, address: str, service: str, method: str, request: Any, timeout_s: float
    ) -> Any:
        """One unary call; raises a ``StreamHouseError`` subclass naming ``address``."""
        rpc = getattr(self.stub(address, service), method)
        try:
            return await rpc(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, address) from exc

    async def close(self) -> None:
        self._closed = True
        channels, self._channels = self._channels, {}
        self._stubs.clear()
        for channel in channels.values():
            await channel.close()
