"""One Kafka client connection: read size-prefixed frames, dispatch, write responses in order.

Requests on a connection are handled one at a time, as Kafka does (it mutes a channel while a
request is in flight), so responses leave in request order and a client's pipelined produce
requests for one partition are appended in the order sent.

Hostile input closes only this connection: a frame larger than ``max_request_bytes`` or shorter
than a header, an unknown API or version, or bytes that do not decode. Memory follows the bytes
that actually arrive, never a declared size. ApiVersions with a version we do not know is
answered in v0 with UNSUPPORTED_VERSION and our ranges, so newer clients can retry lower.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from typing import Any

from streamhouse.broker.kafka import apis, metrics
from streamhouse.broker.kafka.context import ConnectionState, KafkaCluster, RequestContext
from streamhouse.broker.kafka.errors import ErrorCode
from streamhouse.broker.kafka.handlers import HANDLERS
from streamhouse.broker.kafka.handlers.cluster import advertised_api_keys
from streamhouse.broker.kafka.protocol.codec import DecodeError, EncodeError, codec, in_range
from streamhouse.broker.kafka.protocol.specs import MESSAGES

log = logging.getLogger("streamhouse.kafka")

_SIZE = struct.Struct(">i")
_HEADER_FIXED = struct.Struct(">hhi")
_MIN_FRAME = _HEADER_FIXED.size
UNAUTHENTICATED_MAX_BYTES = 512 * 1024
_UNAUTHENTICATED_APIS = frozenset({apis.API_VERSIONS, apis.SASL_HANDSHAKE, apis.SASL_AUTHENTICATE})


class CloseConnection(Exception):
    """The peer broke the protocol; the connection is closed without a response."""


def request_header_version(api_key: int, api_version: int) -> int:
    return 2 if in_range(MESSAGES[apis.NAMES[api_key] + "Request"]["flexible"], api_version) else 1


def response_header_flexible(api_key: int, api_version: int) -> bool:
    # ApiVersions answers with header v0 even in flexible versions, so any client can read it.
    if api_key == apis.API_VERSIONS:
        return False
    return in_range(MESSAGES[apis.NAMES[api_key] + "Response"]["flexible"], api_version)


class KafkaConnection:
    def __init__(
        self,
        cluster: KafkaCluster,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.cluster = cluster
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.state = ConnectionState(peer=f"{peer[0]}:{peer[1]}" if peer else "")
        self.busy = False  # a request is being handled; shutdown lets it finish

    async def serve(self) -> None:
        try:
            while True:
                frame = await self._read_frame()
                if frame is None:
                    return
                self.busy = True
                out = await self._handle(frame)
                if out:
                    self.writer.writelines(out)
                    await self.writer.drain()
                self.busy = False
        except CloseConnection as exc:
            metrics.CLOSED_CONNECTIONS.labels("protocol").inc()
            log.info("closing Kafka connection from %s: %s", self.state.peer, exc)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()

    async def _read_frame(self) -> bytes | None:
        # Like Kafka's connections.max.idle.ms: a peer that sends nothing, or never finishes a
        # frame it started, is dropped rather than holding a connection and its bytes forever.
        try:
            async with asyncio.timeout(self.cluster.settings.connections_max_idle_ms / 1000):
                return await self._read_frame_now()
        except TimeoutError as exc:
            raise CloseConnection("idle for longer than connections.max.idle.ms") from exc

    async def _read_frame_now(self) -> bytes | None:
        try:
            head = await self.reader.readexactly(4)
        except asyncio.IncompleteReadError:
            return None
        (size,) = _SIZE.unpack(head)
        if size < _MIN_FRAME:
            raise CloseConnection(f"frame of {size} bytes is shorter than a request header")
        settings = self.cluster.settings
        limit = settings.max_request_bytes
        if not self.state.authenticated(settings):
            # As Kafka's sasl.server.max.receive.size: strangers cannot make us hold big frames.
            limit = min(limit, UNAUTHENTICATED_MAX_BYTES)
        if size > limit:
            raise CloseConnection(f"frame of {size} bytes exceeds the limit of {limit}")
        return await self.reader.readexactly(size)

    async def _handle(self, frame: bytes) -> list[bytes] | None:
        api_key, api_version, correlation_id = _HEADER_FIXED.unpack_from(frame, 0)
        known = api_key in HANDLERS
        low, high = apis.SUPPORTED.get(api_key, (0, -1))
        if api_key == apis.API_VERSIONS and known and not low <= api_version <= high:
            return self._unsupported_api_versions(correlation_id)
        if not known:
            raise CloseConnection(f"API key {api_key} is not served")
        if not low <= api_version <= high:
            raise CloseConnection(f"{apis.NAMES[api_key]} v{api_version} is not served")
        # Checked before the body is decoded: strangers get no decoding work done for them.
        authenticated = self.state.authenticated(self.cluster.settings)
        if not authenticated and api_key not in _UNAUTHENTICATED_APIS:
            raise CloseConnection(f"{apis.NAMES[api_key]} before SASL authentication")
        header_codec = codec("RequestHeader", request_header_version(api_key, api_version))
        try:
            header, pos = header_codec.decode_from(frame)
            # Trailing bytes are ignored, as Kafka does: librdkafka pads some requests.
            request = codec(apis.NAMES[api_key] + "Request", api_version).decode(
                frame, pos, exact=False
            )
        except DecodeError as exc:
            raise CloseConnection(str(exc)) from exc
        self.state.client_id = header["client_id"]
        ctx = RequestContext(
            self.cluster, self.state, api_key, api_version, correlation_id, header["client_id"]
        )
        started = time.perf_counter()
        response = await self._call(ctx, request)
        metrics.REQUEST_LATENCY.labels(apis.NAMES[api_key]).observe(time.perf_counter() - started)
        if response is None:
            return None
        return self._encode(api_key, api_version, correlation_id, response)

    async def _call(self, ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any] | None:
        name = apis.NAMES[ctx.api_key]
        try:
            return await HANDLERS[ctx.api_key](ctx, request)
        except CloseConnection:
            raise
        except Exception as exc:
            metrics.REQUEST_ERRORS.labels(name).inc()
            log.exception("%s v%d from %s failed", name, ctx.api_version, self.state.peer)
            raise CloseConnection(f"{name} failed: {exc}") from exc

    def _encode(
        self, api_key: int, api_version: int, correlation_id: int, response: dict[str, Any]
    ) -> list[bytes]:
        chunks: list = [b"", _SIZE.pack(correlation_id)]
        if response_header_flexible(api_key, api_version):
            chunks.append(b"\x00")
        try:
            codec(apis.NAMES[api_key] + "Response", api_version).encode_chunks(response, chunks)
        except EncodeError as exc:
            log.exception("cannot encode %s v%d", apis.NAMES[api_key], api_version)
            raise CloseConnection(f"internal error encoding the response: {exc}") from exc
        chunks[0] = _SIZE.pack(sum(len(c) for c in chunks))
        return chunks

    def _unsupported_api_versions(self, correlation_id: int) -> list[bytes]:
        body = codec("ApiVersionsResponse", 0).encode(
            {"error_code": ErrorCode.UNSUPPORTED_VERSION, "api_keys": advertised_api_keys()}
        )
        header = _SIZE.pack(correlation_id)
        return [_SIZE.pack(len(header) + len(body)), header, body]
