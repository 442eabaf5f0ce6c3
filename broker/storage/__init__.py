"""Object stores (local filesystem, S3) and the on-disk segment cache in front of them.

The log writes sealed segments through :class:`SegmentCache` into an :class:`ObjectStore`; which
store is chosen by URL with :func:`open_object_store`. Both stores pass one contract test suite.
"""

from __future__ import annotations

from streamhouse.broker.storage.base import ObjectInfo, ObjectStore, validate_key
from streamhouse.broker.storage.breaker import CircuitBreaker, CircuitState
from streamhouse.broker.storage.cache import CacheStats, SegmentCache
from streamhouse.broker.storage.errors import (
    ObjectNotFoundError,
    ObjectStoreError,
    ObjectStoreUnavailableError,
)
from streamhouse.broker.storage.factory import open_object_store
from streamhouse.broker.storage.local import LocalObjectStore
from streamhouse.broker.storage.rate_limit import TokenBucket
from streamhouse.broker.storage.s3 import S3ObjectStore
from streamhouse.broker.storage.stats import ObjectStoreStats

__all__ = [
    "CacheStats",
    "CircuitBreaker",
    "CircuitState",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectStoreStats",
    "ObjectStoreUnavailableError",
    "S3ObjectStore",
    "SegmentCache",
    "TokenBucket",
    "open_object_store",
    "validate_key",
]
