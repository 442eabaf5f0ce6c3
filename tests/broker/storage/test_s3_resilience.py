"""S3ObjectStore under failure: retries, multipart abort, circuit breaker and rate limiting.

Faults are injected by a real HTTP proxy in front of moto (see conftest.py), so botocore, the
connection pool and our retry loop all run for real.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import boto3
import pytest
from streamhouse.broker.storage import (
    CircuitState,
    ObjectNotFoundError,
    ObjectStoreError,
    ObjectStoreUnavailableError,
    S3ObjectStore,
)

MiB = 1024 * 1024


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def make_store() -> AsyncIterator[Callable[..., S3ObjectStore]]:
    """Builds S3ObjectStores with fast backoff for tests, closing them afterwards."""
    stores: list[S3ObjectStore] = []

    def make(bucket: str, endpoint: str, **options: Any) -> S3ObjectStore:
        options.setdefault("base_backoff_s", 0.001)
        options.setdefault("max_backoff_s", 0.005)
        options.setdefault("connect_timeout_s", 1.0)
        options.setdefault("read_timeout_s", 5.0)
        store = S3ObjectStore(bucket, "p/", endpoint_url=endpoint, **options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


# ---------------------------------------------------------------------------- retries
async def test_throttling_is_retried_until_it_succeeds(s3_bucket, fault_proxy, make_store) -> None:
    store = make_store(s3_bucket, fault_proxy.url)
    fault_proxy.fail(status=503, code="SlowDown", remaining=2)
    await store.put("k", b"payload")
    assert store.stats.retries == 2
    assert store.stats.requests == 3
    assert store.stats.errors == 0

    fault_proxy.fail(status=429, code="TooManyRequests", remaining=1)
    fault_proxy.fail(status=500, code="InternalError", remaining=1)
    assert await store.get("k") == b"payload"
    assert store.stats.retries == 4
    assert fault_proxy.injected == 4


async def test_dropped_connection_is_retried(s3_bucket, fault_proxy, make_store) -> None:
    store = make_store(s3_bucket, fault_proxy.url)
    await store.put("k", bytes(range(200)))
    # aiohttp itself retries once on a dropped keep-alive connection; three drops make sure
    # the failure reaches our retry loop too.
    fault_proxy.fail(status=0, remaining=3, match=lambda r: r.method == "GET")
    assert await store.get_range("k", 10, 20) == bytes(range(10, 20))
    assert fault_proxy.injected == 3
    assert store.stats.retries >= 1


async def test_missing_key_is_not_retried(s3_bucket, fault_proxy, make_store) -> None:
    store = make_store(s3_bucket, fault_proxy.url)
    with pytest.raises(ObjectNotFoundError, match="gone"):
        await store.get("gone")
    with pytest.raises(ObjectNotFoundError, match="gone"):
        await store.size("gone")
    assert store.stats.requests == 2
    assert store.stats.retries == 0
    assert len(fault_proxy.seen) == 2


async def test_access_denied_is_not_retried_and_is_not_not_found(
    s3_bucket, fault_proxy, make_store
) -> None:
    store = make_store(s3_bucket, fault_proxy.url)
    fault_proxy.fail(status=403, code="AccessDenied", remaining=None)
    with pytest.raises(ObjectStoreError, match="AccessDenied") as info:
        await store.get("k")
    assert not isinstance(info.value, ObjectNotFoundError)
    assert len(fault_proxy.seen) == 1
    assert store.stats.retries == 0
    assert store.stats.errors == 1


async def test_retries_give_up_with_a_clear_error(s3_bucket, fault_proxy, make_store) -> None:
    store = make_store(s3_bucket, fault_proxy.url, max_retries=2)
    fault_proxy.fail(status=503, code="SlowDown", remaining=None)
    with pytest.raises(ObjectStoreError, match=r"put of 'k'.*after 3 attempts.*SlowDown"):
        await store.put("k", b"v")
    assert len(fault_proxy.seen) == 3
    assert store.stats.errors == 1
    assert not await make_store(s3_bucket, fault_proxy.upstream).list()


# ---------------------------------------------------------------------------- multipart
@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalError"), (403, "AccessDenied")], ids=["5xx", "4xx"]
)
async def test_failed_multipart_upload_is_aborted_and_invisible(
    s3_bucket, s3_endpoint, fault_proxy, make_store, status: int, code: str
) -> None:
    store = make_store(
        s3_bucket, fault_proxy.url, max_retries=1, part_size=5 * MiB, multipart_threshold=5 * MiB
    )
    fault_proxy.fail(
        status=status,
        code=code,
        remaining=None,
        match=lambda r: r.method == "PUT" and "partNumber=2" in r.query_string,
    )
    with pytest.raises(ObjectStoreError, match=code):
        await store.put("big", os.urandom(11 * MiB))

    client = s3_client(s3_endpoint)
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0
    aborts = [path for method, path in fault_proxy.seen if method == "DELETE"]
    assert len(aborts) == 1 and "uploadId=" in aborts[0]
    with pytest.raises(ObjectNotFoundError):
        await store.get("big")


async def test_multipart_part_retry_still_yields_identical_object(
    s3_bucket, fault_proxy, make_store
) -> None:
    store = make_store(s3_bucket, fault_proxy.url, part_size=5 * MiB, multipart_threshold=5 * MiB)
    fault_proxy.fail(status=503, code="SlowDown", match=lambda r: "partNumber=1" in r.query_string)
    data = os.urandom(12 * MiB)
    await store.put("big", data)
    assert store.stats.retries == 1
    assert await store.get("big") == data


# ---------------------------------------------------------------------------- breaker
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_breaker_opens_fails_fast_and_recovers(
    s3_bucket: str,
    s3_endpoint: str,
    start_fault_proxy: Callable[..., Awaitable[Any]],
    make_store: Callable[..., S3ObjectStore],
) -> None:
    s3_client(s3_endpoint).put_object(Bucket=s3_bucket, Key="p/k", Body=b"value")
    port = closed_port()
    clock = FakeClock()
    store = make_store(
        s3_bucket,
        f"http://127.0.0.1:{port}",
        max_retries=1,
        breaker_failure_threshold=3,
        breaker_reset_s=10.0,
        clock=clock,
    )
    for _ in range(3):  # nothing listens: each call fails after its retry
        with pytest.raises(ObjectStoreError, match="after 2 attempts") as info:
            await store.get("k")
        assert not isinstance(info.value, ObjectStoreUnavailableError)
    assert store.breaker.state is CircuitState.OPEN
    sent = store.stats.requests
    assert sent == 6

    started = time.monotonic()
    for _ in range(20):
        with pytest.raises(ObjectStoreUnavailableError, match=r"failing fast.*until") as info:
            await store.get("k")
    assert time.monotonic() - started < 0.5
    assert info.value.retry_after_s == pytest.approx(10.0)
    assert store.stats.requests == sent  # not one connection attempt while open
    assert store.stats.rejected == 20

    await start_fault_proxy(port)  # the endpoint comes back...
    with pytest.raises(ObjectStoreUnavailableError):  # ...but the breaker waits its period
        await store.get("k")
    clock.now += 10.0
    assert store.breaker.state is CircuitState.HALF_OPEN
    assert await store.get("k") == b"value"  # the probe
    assert store.breaker.state is CircuitState.CLOSED
    assert await store.get_range("k", 0, 3) == b"val"


async def test_failed_probe_reopens_the_breaker(s3_bucket, fault_proxy, make_store) -> None:
    clock = FakeClock()
    store = make_store(
        s3_bucket,
        fault_proxy.url,
        max_retries=0,
        breaker_failure_threshold=2,
        breaker_reset_s=5.0,
        clock=clock,
    )
    fault_proxy.fail(status=503, code="SlowDown", remaining=None)
    for _ in range(2):
        with pytest.raises(ObjectStoreError, match="after 1 attempt: 503"):
            await store.size("k")
    clock.now += 5.0
    with pytest.raises(ObjectStoreError, match="HTTP 503"):  # the probe reaches S3 and fails
        await store.size("k")
    assert len(fault_proxy.seen) == 3
    with pytest.raises(ObjectStoreUnavailableError, match=r"5\.0s more"):
        await store.size("k")
    assert len(fault_proxy.seen) == 3


async def test_not_found_answers_do_not_trip_the_breaker(s3_bucket, s3_endpoint, make_store):
    store = make_store(s3_bucket, s3_endpoint, breaker_failure_threshold=2)
    for _ in range(5):
        with pytest.raises(ObjectNotFoundError):
            await store.get("missing")
    assert store.breaker.state is CircuitState.CLOSED
    assert store.breaker.consecutive_failures == 0


# ---------------------------------------------------------------------------- rate limit
async def test_requests_are_rate_limited(s3_bucket, s3_endpoint, make_store) -> None:
    store = make_store(s3_bucket, s3_endpoint, rate_limit_per_s=40.0, rate_burst=2)
    started = time.monotonic()
    for i in range(8):  # 2 from the burst, then one per 25 ms
        await store.put(f"k{i}", b"x")
    assert time.monotonic() - started >= 6 / 40.0 * 0.9
    assert store.stats.requests == 8


async def test_closed_store_refuses_calls(s3_bucket, s3_endpoint, make_store) -> None:
    store = make_store(s3_bucket, s3_endpoint)
    await store.put("k", b"v")
    await store.close()
    with pytest.raises(ObjectStoreError, match="closed"):
        await store.get("k")
