"""Fixtures for the object-store tests: both stores, and an HTTP proxy that injects S3 faults.

The proxy sits between an :class:`S3ObjectStore` and moto's server and forwards every request
unchanged, except the ones a test told it to fail: it then answers like S3 does when it throttles
(503 SlowDown), errors (500) or drops the connection. That exercises the real retry, breaker and
abort paths over real HTTP without mocking botocore.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from streamhouse.broker.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from yarl import URL

# Headers that describe one hop of the connection, not the message; never forwarded.
_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te"}
)


@dataclasses.dataclass
class Fault:
    """How to fail matching requests: an S3 error answer, or ``status=0`` to drop the connection.

    ``remaining`` counts down per injected failure; ``None`` fails every matching request.
    """

    status: int = 503
    code: str = "SlowDown"
    remaining: int | None = 1
    match: Callable[[web.Request], bool] = lambda request: True


class FaultProxy:
    """A forwarding HTTP proxy to ``upstream`` that fails requests matching its faults."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: list[Fault] = []
        self.seen: list[tuple[str, str]] = []  # (method, raw path) of every request received
        self.injected = 0
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, **kwargs: object) -> Fault:
        fault = Fault(**kwargs)  # type: ignore[arg-type]
        self.faults.append(fault)
        return fault

    async def start(self, port: int = 0) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def _pick(self, request: web.Request) -> Fault | None:
        for fault in self.faults:
            if (fault.remaining is None or fault.remaining > 0) and fault.match(request):
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append((request.method, request.raw_path))
        fault = self._pick(request)
        if fault is not None:
            self.injected += 1
            if fault.status == 0:
                assert request.transport is not None
                request.transport.abort()
                return web.Response()  # goes nowhere: the connection is gone
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f"<Error><Code>{fault.code}</Code><Message>injected by test proxy</Message></Error>"
            )
            return web.Response(
                status=fault.status, body=xml.encode(), content_type="application/xml"
            )
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(
            request.method,
            URL(self.upstream + request.raw_path, encoded=True),
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
            if request.method == "HEAD":
                # HEAD answers carry the object's length but no body.
                head = web.StreamResponse(status=upstream.status, headers=out)
                head.content_length = int(upstream.headers.get("Content-Length", 0))
                await head.prepare(request)
                await head.write_eof()
                return head
            return web.Response(status=upstream.status, headers=out, body=payload)


@pytest.fixture
async def start_fault_proxy(
    s3_endpoint: str,
) -> AsyncIterator[Callable[..., Awaitable[FaultProxy]]]:
    """Factory: ``await start_fault_proxy(port=0)`` gives a running proxy in front of moto."""
    proxies: list[FaultProxy] = []

    async def start(port: int = 0) -> FaultProxy:
        proxy = FaultProxy(s3_endpoint)
        await proxy.start(port)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        await proxy.stop()


@pytest.fixture
async def fault_proxy(start_fault_proxy: Callable[..., Awaitable[FaultProxy]]) -> FaultProxy:
    """A running fault proxy on a free port."""
    return await start_fault_proxy()


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    """Each object store backend in turn, empty; the contract tests run against both."""
    if request.param == "local":
        backend: ObjectStore = LocalObjectStore(tmp_path / "objects")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = request.getfixturevalue("s3_bucket")
        backend = S3ObjectStore(
            bucket,
            prefix="p/",
            endpoint_url=endpoint,
            multipart_threshold=5 * 1024 * 1024,
            part_size=5 * 1024 * 1024,
            list_page_size=7,
        )
    yield backend
    await backend.close()
