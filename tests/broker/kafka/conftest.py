"""Shared fixtures of the Kafka listener tests: one real server per module and a raw socket.

Test modules import the helpers as ``tests.broker.kafka.conftest`` (pytest registers conftest
modules under that name in importlib mode). ``KafkaSocket`` speaks the wire protocol through our
own codec, so a test can send exactly the bytes a client would, including broken ones.
"""

from __future__ import annotations

import socket
import struct
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.connection import request_header_version, response_header_flexible
from streamhouse.broker.kafka.protocol.codec import codec

from tests.conftest import ServerProcess

_SIZE = struct.Struct(">i")


@pytest.fixture(scope="module")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ready ``streamhouse serve`` process (embedded defaults) shared by a test module."""
    server = ServerProcess(tmp_path_factory.mktemp("kafka") / "data")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def bootstrap(kafka_server: ServerProcess) -> str:
    """``bootstrap.servers`` for the module's server."""
    return f"127.0.0.1:{kafka_server.kafka_port}"


def unique_topic(prefix: str = "t") -> str:
    """A topic name no other test uses, so tests sharing a server do not see each other."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(
    server: ServerProcess,
    name: str,
    partitions: int = 1,
    configs: Mapping[str, str] | None = None,
) -> None:
    """Creates a topic over gRPC (independent of the Kafka admin APIs under test)."""
    from streamhouse.broker.client import AdminClient

    with AdminClient(server.grpc_address) as admin:
        admin.create_topic(name, partitions=partitions, configs=dict(configs or {}))


class KafkaSocket:
    """A blocking Kafka connection that encodes requests and decodes responses with our codec.

    ``request`` sends one request and returns the decoded response body; ``send`` only sends
    (for acks=0 or pipelining) and returns the correlation id; ``receive`` reads one response.
    """

    def __init__(self, port: int, client_id: str | None = "raw-test", timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.client_id = client_id
        self._correlation = 0

    def __enter__(self) -> KafkaSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, api_key: int, version: int, body: Mapping[str, Any]) -> int:
        self._correlation += 1
        header = codec("RequestHeader", request_header_version(api_key, version)).encode(
            {
                "request_api_key": api_key,
                "request_api_version": version,
                "correlation_id": self._correlation,
                "client_id": self.client_id,
            }
        )
        payload = header + codec(apis.NAMES[api_key] + "Request", version).encode(body)
        self.send_raw(payload)
        return self._correlation

    def send_raw(self, payload: bytes) -> None:
        """Sends ``payload`` as one size-prefixed frame."""
        self.sock.sendall(_SIZE.pack(len(payload)) + payload)

    def receive_frame(self) -> bytes:
        (size,) = _SIZE.unpack(self._read(4))
        return self._read(size)

    def receive(self, api_key: int, version: int, correlation_id: int | None = None) -> dict:
        frame = self.receive_frame()
        (correlation,) = _SIZE.unpack_from(frame, 0)
        if correlation_id is not None:
            assert correlation == correlation_id, (correlation, correlation_id)
        pos = 4
        if response_header_flexible(api_key, version):
            assert frame[pos] == 0, "response header tagged fields are expected to be empty"
            pos += 1
        return codec(apis.NAMES[api_key] + "Response", version).decode(frame, pos)

    def request(self, api_key: int, version: int, body: Mapping[str, Any]) -> dict:
        correlation = self.send(api_key, version, body)
        return self.receive(api_key, version, correlation)

    def is_closed(self, wait: float = 2.0) -> bool:
        """True when the server closed the connection (EOF) within ``wait`` seconds."""
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(1) == b""
        except TimeoutError:
            return False
        except OSError:
            return True

    def _read(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)
