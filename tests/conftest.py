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
from collections.abc import Iterator

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
