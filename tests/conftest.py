"""Session fixtures that start the real services the tests talk to.

PostgreSQL is expected on 127.0.0.1:5432 (``make test`` starts it); the S3-compatible server is
moto's server mode, started here as a child process on loopback so every request crosses real HTTP.
Both fail the test loudly when the service cannot be reached: nothing is skipped.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

POSTGRES_URL_ENV = "STREAMHOUSE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the PostgreSQL server used by the metadata contract tests."""
    import asyncpg

    url = os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)

    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        pytest.fail(f"PostgreSQL is not reachable at {url} ({exc!r}); start it (make services)")
    return url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Starts moto's S3-compatible server on loopback and yields its endpoint URL."""
    port = free_port()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            pytest.fail(f"moto server exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("moto server did not start within 30 s")
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(autouse=True, scope="session")
def _aws_test_credentials() -> None:
    """Credentials moto accepts; set for the whole run so no test reaches a real account."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh, empty bucket on the S3 server for one test."""
    import boto3

    name = f"sh-test-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=name)
    return name


class ServerProcess:
    """A real ``streamhouse serve`` child process on free loopback ports.

    ``grpc_address`` is what clients dial; ``http_url`` serves REST, health and metrics.
    Output goes to ``log_path`` so a failing test can show it.
    """

    def __init__(self, data_dir: os.PathLike[str], *extra: str, env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.extra = extra
        self.env = env or {}
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.kafka_port = free_port()
        self.log_path = f"{data_dir}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 60) -> ServerProcess:
        import httpx

        args = [
            sys.executable, "-m", "streamhouse.workbench.cli", "serve",
            "--data-dir", str(self.data_dir),
            "--http-port", str(self.http_port),
            "--grpc-port", str(self.grpc_port),
            "--kafka-port", str(self.kafka_port),
            *self.extra,
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.http_url}/ready", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        pytest.fail(f"server did not become ready:\n{self.output()}")

    def output(self) -> str:
        with open(self.log_path, "rb") as log:
            return log.read().decode(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no shutdown work at all, as a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., ServerProcess]]:
    """Factory: ``start_server(*flags, data_dir=None, env=None)`` starts a ready server process.

    Every server it started is SIGKILLed at the end of the test (stop it yourself to test a
    graceful shutdown).
    """
    started: list[ServerProcess] = []

    def start(*extra: str, data_dir: os.PathLike[str] | None = None, env=None) -> ServerProcess:
        directory = data_dir or tmp_path_factory.mktemp("server") / "data"
        server = ServerProcess(directory, *extra, env=env)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()


def wait_for(condition: Callable[[], object], timeout: float, what: str):
    """Polls ``condition`` until it returns something truthy, which is returned."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """One ready server with embedded defaults (SQLite + local files)."""
    return start_server()


@pytest.fixture
def cluster_flags(postgres_url: str, s3_endpoint: str, s3_bucket: str) -> Iterator[list[str]]:
    """Flags for agents sharing one PostgreSQL schema and one S3 prefix (dropped afterwards)."""
    import asyncpg

    schema = f"sh_cluster_{uuid.uuid4().hex[:10]}"
    yield [
        "--metadata-url", f"{postgres_url}?schema={schema}",
        "--object-store", f"s3://{s3_bucket}/c?endpoint={s3_endpoint}&region=us-east-1",
        "--lease-ttl-ms", "3000",
    ]  # fmt: skip

    async def drop() -> None:
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()

    asyncio.run(drop())
