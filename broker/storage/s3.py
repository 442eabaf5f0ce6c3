"""Objects in an S3 bucket (or any S3-compatible server), through one long-lived aioboto3 client.

Every request goes through the same gate, in this order: the circuit breaker (fail fast while S3
is down), the token bucket (stay under the request rate S3 tolerates), the request itself, and on
a retryable failure a jittered exponential backoff and another attempt (see :mod:`.retry`).
botocore's own retries are switched off so there is exactly one retry policy, ours, and every
attempt is counted in :attr:`S3ObjectStore.stats`.

Large objects go up as a multipart upload whose parts are sent concurrently; if any part fails
the upload is aborted, so S3 never shows (or bills) a partial object. S3 publishes an object only
when its PUT or CompleteMultipartUpload succeeds, which gives "whole or not at all" for free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aioboto3
from aiobotocore.config import AioConfig
from streamhouse.broker.storage.base import (
    ObjectInfo,
    validate_key,
    validate_prefix,
    validate_range,
)
from streamhouse.broker.storage.breaker import CircuitBreaker
from streamhouse.broker.storage.errors import (
    ObjectNotFoundError,
    ObjectStoreError,
    ObjectStoreUnavailableError,
)
from streamhouse.broker.storage.rate_limit import TokenBucket
from streamhouse.broker.storage.retry import (
    backoff_delay,
    describe,
    error_code,
    is_not_found,
    is_retryable,
)
from streamhouse.broker.storage.stats import ObjectStoreStats, StatsRecorder

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: S3 rejects multipart parts smaller than this (except the last one).
MIN_PART_SIZE = 5 * 1024 * 1024
#: S3 allows at most this many parts per upload.
MAX_PARTS = 10_000


class S3ObjectStore:
    """An :class:`~.base.ObjectStore` on S3.

    Args:
        bucket: the bucket; it must exist.
        prefix: prepended to every key (a trailing ``/`` is added when missing), so several
            clusters can share a bucket.
        endpoint_url: for S3-compatible servers (MinIO, moto); path-style addressing is used then.
        region: the bucket's region.
        multipart_threshold: objects of at least this size are uploaded in parts.
        part_size: size of each part (S3's minimum is 5 MiB).
        max_retries: attempts after the first for retryable failures.
        base_backoff_s: first backoff cap; doubled per attempt up to ``max_backoff_s``.
        max_backoff_s: largest backoff cap.
        rate_limit_per_s: average requests per second allowed (token bucket rate).
        rate_burst: requests allowed at once (token bucket capacity).
        breaker_failure_threshold: consecutive failed requests that open the circuit.
        breaker_reset_s: how long the circuit stays open before one probe is let through.
        connect_timeout_s: TCP/TLS connect timeout per attempt.
        read_timeout_s: socket read timeout per attempt.
        max_pool_connections: HTTP connections kept to the endpoint.
        upload_concurrency: parts of one multipart upload sent at the same time.
        list_page_size: keys per ListObjectsV2 page (S3's maximum is 1000).
        clock: monotonic clock of the circuit breaker; tests inject a fake one.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        multipart_threshold: int = 8 * 1024 * 1024,
        part_size: int = 8 * 1024 * 1024,
        max_retries: int = 5,
        base_backoff_s: float = 0.05,
        max_backoff_s: float = 2.0,
        rate_limit_per_s: float = 1000.0,
        rate_burst: int = 200,
        breaker_failure_threshold: int = 5,
        breaker_reset_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        max_pool_connections: int = 32,
        upload_concurrency: int = 4,
        list_page_size: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"invalid S3 bucket name {bucket!r}")
        if prefix:
            if prefix.startswith("/") or any(seg in (".", "..") for seg in prefix.split("/")):
                raise ValueError(f"invalid S3 key prefix {prefix!r}: relative, no '.' or '..'")
            validate_prefix(prefix)
            if not prefix.endswith("/"):
                prefix += "/"
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be >= {MIN_PART_SIZE} bytes (S3 minimum)")
        if multipart_threshold < 1:
            raise ValueError("multipart_threshold must be >= 1")
        if max_retries < 0 or upload_concurrency < 1:
            raise ValueError("max_retries must be >= 0 and upload_concurrency >= 1")
        if not 1 <= list_page_size <= 1000:
            raise ValueError("list_page_size must be between 1 and 1000")
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.region = region
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.max_retries = max_retries
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.upload_concurrency = upload_concurrency
        self.list_page_size = list_page_size
        self.limiter = TokenBucket(rate_limit_per_s, rate_burst)
        self.breaker = CircuitBreaker(
            breaker_failure_threshold, breaker_reset_s, clock=clock, name=f"S3 bucket {bucket!r}"
        )
        self._config = AioConfig(
            region_name=region,
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            max_pool_connections=max_pool_connections,
            retries={"total_max_attempts": 1, "mode": "standard"},  # we retry ourselves
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        self._recorder = StatsRecorder()
        self._rng = random.Random()
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._client_lock = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"S3ObjectStore(s3://{self.bucket}/{self.prefix}{where})"

    @property
    def stats(self) -> ObjectStoreStats:
        """A snapshot of request, retry, byte and latency counters."""
        return self._recorder.snapshot(rejected=self.breaker.rejected)

    # ------------------------------------------------------------------ plumbing
    async def _get_client(self) -> Any:
        """Creates the one client on first use (it must be created inside a running loop)."""
        if self._closed:
            raise ObjectStoreError(f"{self!r} is closed")
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    session = aioboto3.Session()
                    self._client = await self._stack.enter_async_context(
                        session.client(
                            "s3",
                            endpoint_url=self.endpoint_url,
                            region_name=self.region,
                            config=self._config,
                        )
                    )
        return self._client

    def _full_key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    async def _call(
        self,
        op: str,
        key: str,
        request: Callable[[Any], Awaitable[_T]],
        *,
        admit: bool = True,
    ) -> _T:
        """Sends one logical request through breaker, rate limit and retries.

        Args:
            op: operation name for stats and messages.
            key: the caller's key (or prefix), for error messages.
            request: sends the request with the given client and returns its result (reading
                any response body inside, so a body cut short is retried too).
            admit: consult the circuit breaker first; cleanup calls (abort) skip it.

        Raises:
            ObjectNotFoundError: S3 answered that the key does not exist.
            ObjectStoreUnavailableError: the circuit is open; no request was sent.
            ObjectStoreError: any other failure, after retries when it was retryable.
        """
        client = await self._get_client()
        if admit:
            self.breaker.before_call()
        rec = self._recorder
        started = time.monotonic()
        attempt = 0
        try:
            while True:
                await self.limiter.acquire()
                rec.requests += 1
                try:
                    result = await request(client)
                except Exception as exc:
                    if not is_retryable(exc):
                        self.breaker.record_success()  # the store is up and answered
                        raise self._translate(op, key, exc) from exc
                    if attempt >= self.max_retries:
                        self.breaker.record_failure()
                        raise ObjectStoreError(
                            f"S3 {op} of {key!r} in bucket {self.bucket!r} failed after "
                            f"{attempt + 1} attempt{'s' if attempt else ''}: {describe(exc)}"
                        ) from exc
                    delay = backoff_delay(
                        attempt, self.base_backoff_s, self.max_backoff_s, self._rng
                    )
                    log.debug("S3 %s %r: %s; retrying in %.3fs", op, key, describe(exc), delay)
                    attempt += 1
                    rec.retries += 1
                    await asyncio.sleep(delay)
                    continue
                self.breaker.record_success()
                return result
        except ObjectNotFoundError:
            raise
        except ObjectStoreUnavailableError:
            raise
        except ObjectStoreError:
            rec.errors += 1
            raise
        finally:
            rec.observe(op, time.monotonic() - started)

    def _translate(self, op: str, key: str, exc: Exception) -> ObjectStoreError:
        if is_not_found(exc):
            return ObjectNotFoundError(key)
        return ObjectStoreError(
            f"S3 {op} of {key!r} in bucket {self.bucket!r} failed: {describe(exc)}"
        )

    # ------------------------------------------------------------------ contract
    async def put(self, key: str, data: bytes) -> None:
        """Stores ``data``; objects of ``multipart_threshold`` bytes or more go up in parts."""
        full = self._full_key(key)
        data = bytes(data)
        if len(data) >= self.multipart_threshold:
            started = time.monotonic()
            try:
                await self._put_multipart(key, full, data)
            finally:
                self._recorder.observe("put_multipart", time.monotonic() - started)
        else:
            await self._call(
                "put", key, lambda c: c.put_object(Bucket=self.bucket, Key=full, Body=data)
            )
        self._recorder.bytes_out += len(data)

    async def _put_multipart(self, key: str, full: str, data: bytes) -> None:
        part_size = max(self.part_size, -(-len(data) // MAX_PARTS))
        bounds = [(i, min(i + part_size, len(data))) for i in range(0, len(data), part_size)]
        created = await self._call(
            "create_multipart_upload",
            key,
            lambda c: c.create_multipart_upload(Bucket=self.bucket, Key=full),
        )
        upload_id = created["UploadId"]
        gate = asyncio.Semaphore(self.upload_concurrency)

        async def upload(number: int, start: int, end: int) -> dict[str, Any]:
            async with gate:
                body = data[start:end]
                answer = await self._call(
                    "upload_part",
                    key,
                    lambda c: c.upload_part(
                        Bucket=self.bucket,
                        Key=full,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=body,
                    ),
                )
            part = {"PartNumber": number, "ETag": answer["ETag"]}
            for field in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256"):
                if answer.get(field):
                    part[field] = answer[field]
            return part

        tasks = [
            asyncio.create_task(upload(n, start, end))
            for n, (start, end) in enumerate(bounds, start=1)
        ]
        try:
            parts = await asyncio.gather(*tasks)
            await self._call(
                "complete_multipart_upload",
                key,
                lambda c: c.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=full,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": list(parts)},
                ),
            )
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # Shielded: a cancelled put must still not leave a pending upload behind.
            await asyncio.shield(self._abort(key, full, upload_id))
            raise

    async def _abort(self, key: str, full: str, upload_id: str) -> None:
        try:
            await self._call(
                "abort_multipart_upload",
                key,
                lambda c: c.abort_multipart_upload(
                    Bucket=self.bucket, Key=full, UploadId=upload_id
                ),
                admit=False,
            )
        except ObjectStoreError as exc:  # invisible either way; a lifecycle rule reaps it
            log.warning("could not abort multipart upload %s of %r: %s", upload_id, key, exc)

    async def get(self, key: str) -> bytes:
        """Returns the whole object."""
        full = self._full_key(key)

        async def request(c: Any) -> bytes:
            answer = await c.get_object(Bucket=self.bucket, Key=full)
            async with answer["Body"] as stream:
                return await stream.read()

        data = await self._call("get", key, request)
        self._recorder.bytes_in += len(data)
        return data

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        """Returns bytes ``[start, end)``, clamped to the object's size like a slice."""
        full = self._full_key(key)
        validate_range(start, end)
        if start == end:  # HTTP cannot express an empty range; still report a missing key
            await self.size(key)
            return b""

        async def request(c: Any) -> bytes:
            try:
                answer = await c.get_object(
                    Bucket=self.bucket, Key=full, Range=f"bytes={start}-{end - 1}"
                )
            except Exception as exc:
                if error_code(exc) == "InvalidRange":  # start at or past the end
                    return b""
                raise
            async with answer["Body"] as stream:
                return await stream.read()

        data = await self._call("get_range", key, request)
        self._recorder.bytes_in += len(data)
        return data

    async def size(self, key: str) -> int:
        """Returns the object's size in bytes (a HEAD request)."""
        full = self._full_key(key)
        answer = await self._call(
            "size", key, lambda c: c.head_object(Bucket=self.bucket, Key=full)
        )
        return int(answer["ContentLength"])

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Returns the objects under ``prefix``, sorted by key, following every page."""
        validate_prefix(prefix)
        full_prefix = self.prefix + prefix
        strip = len(self.prefix)
        found: list[ObjectInfo] = []
        token: str | None = None
        while True:
            args: dict[str, Any] = {
                "Bucket": self.bucket,
                "Prefix": full_prefix,
                "MaxKeys": self.list_page_size,
            }
            if token:
                args["ContinuationToken"] = token
            page = await self._call("list", prefix, lambda c, a=args: c.list_objects_v2(**a))
            found.extend(
                ObjectInfo(item["Key"][strip:], int(item["Size"]))
                for item in page.get("Contents", [])
            )
            if not page.get("IsTruncated"):
                break
            token = page.get("NextContinuationToken")
            if not token:
                raise ObjectStoreError(f"S3 list of {prefix!r}: truncated page without a token")
        found.sort(key=lambda info: info.key)
        return found

    async def delete(self, key: str) -> None:
        """Removes the object; S3 answers success for a missing key too."""
        full = self._full_key(key)
        await self._call("delete", key, lambda c: c.delete_object(Bucket=self.bucket, Key=full))

    async def close(self) -> None:
        """Closes the client and its connection pool."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await self._stack.aclose()
