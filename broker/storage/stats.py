"""Counters of one object store, read as an immutable snapshot.

Operators need to see when S3 gets slow or starts throttling before it becomes an outage: the
request and retry counts, the bytes moved and the latency of each operation kind are exported by
the metrics endpoint from :attr:`S3ObjectStore.stats`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class ObjectStoreStats:
    """A point-in-time copy of a store's counters.

    Attributes:
        requests: HTTP requests sent (every attempt, so retries count too).
        errors: operations that failed after their retries (a missing key is an answer, not an
            error, and is not counted).
        retries: attempts repeated after a retryable failure.
        rejected: calls refused by the open circuit breaker without a request.
        bytes_in: payload bytes read from the store.
        bytes_out: payload bytes written to the store.
        op_counts: completed operations per kind (``put``, ``get``, ``get_range``, ...).
        latency_sum_s: total wall time per operation kind, retries and backoff included.
        latency_max_s: slowest single operation per kind.
    """

    requests: int = 0
    errors: int = 0
    retries: int = 0
    rejected: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    op_counts: Mapping[str, int] = field(default_factory=dict)
    latency_sum_s: Mapping[str, float] = field(default_factory=dict)
    latency_max_s: Mapping[str, float] = field(default_factory=dict)


class StatsRecorder:
    """The mutable side: updated by the store on the event loop, snapshotted on demand."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.retries = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self._counts: dict[str, int] = {}
        self._sum: dict[str, float] = {}
        self._max: dict[str, float] = {}

    def observe(self, op: str, elapsed_s: float) -> None:
        """Records one finished operation of kind ``op`` that took ``elapsed_s``."""
        self._counts[op] = self._counts.get(op, 0) + 1
        self._sum[op] = self._sum.get(op, 0.0) + elapsed_s
        self._max[op] = max(self._max.get(op, 0.0), elapsed_s)

    def snapshot(self, rejected: int) -> ObjectStoreStats:
        """Returns an immutable copy; ``rejected`` comes from the circuit breaker."""
        return ObjectStoreStats(
            requests=self.requests,
            errors=self.errors,
            retries=self.retries,
            rejected=rejected,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            op_counts=MappingProxyType(dict(self._counts)),
            latency_sum_s=MappingProxyType(dict(self._sum)),
            latency_max_s=MappingProxyType(dict(self._max)),
        )
