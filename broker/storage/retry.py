"""Which S3 failures are worth retrying, and how long to wait before the next attempt.

Retrying is right when the failure is about the moment (throttling, a 5xx, a dropped or timed
out connection, a body cut short) and wrong when it is about the request (404, 403, a malformed
key): those would fail identically and only add load. Backoff is exponential with full jitter
(sleep a uniform random time up to the capped exponential), which spreads out the retries of
many agents that were throttled at the same instant.
"""

from __future__ import annotations

import asyncio
import random

from botocore.exceptions import (
    ChecksumError,
    ClientError,
    ConnectionError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
)

#: Error codes S3 and S3-compatible stores use for "slow down" and transient server trouble.
RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "TooManyRequests",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
    }
)

#: Error codes that mean the key is not there (HEAD answers carry only the status).
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})

_TRANSPORT_ERRORS = (
    HTTPClientError,  # connection closed, read timeout, streaming body cut short
    ConnectionError,  # refused, connect timeout, DNS
    IncompleteReadError,
    ChecksumError,
    FlexibleChecksumError,  # body corrupted in flight
    asyncio.TimeoutError,
    OSError,
)


def error_code(exc: BaseException) -> str | None:
    """The S3 error code of a ``ClientError`` (``NoSuchKey``, ``SlowDown``, ``503``...)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) or None
    return None


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a ``ClientError``, if the server answered at all."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    return None


def is_retryable(exc: BaseException) -> bool:
    """True for failures that a later attempt may not see (see the module docstring)."""
    if isinstance(exc, ClientError):
        status = http_status(exc) or 0
        return status >= 500 or status == 429 or error_code(exc) in RETRYABLE_CODES
    return isinstance(exc, _TRANSPORT_ERRORS)


def is_not_found(exc: BaseException) -> bool:
    """True when S3 answered that the key does not exist."""
    return error_code(exc) in NOT_FOUND_CODES


def backoff_delay(
    attempt: int, base_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Seconds before retry ``attempt + 1``: uniform in ``[0, min(max_s, base_s * 2**attempt)]``."""
    cap = min(max_s, base_s * (2 ** min(attempt, 32)))
    return (rng or random).uniform(0.0, cap)


def describe(exc: BaseException) -> str:
    """A one-line description of a failure for error messages."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', '?')} (HTTP {http_status(exc)}): {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"
