"""Prometheus views of the WAL, the object store and the segment cache of one agent.

These components keep their own counters (cheap on their hot paths and testable without a
registry); this collector reads them at scrape time, so `/metrics` costs nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import REGISTRY, CollectorRegistry
from streamhouse.broker.log import LogManager


class LogCollector:
    """Exports WAL size and fsync latency, object-store requests/errors/latency, cache use."""

    def __init__(self, manager: LogManager) -> None:
        self.manager = manager

    def collect(self) -> Iterator[Metric]:
        wal = self.manager.wal
        if wal is not None:
            stats = wal.stats
            yield GaugeMetricFamily(
                "streamhouse_wal_size_bytes", "Bytes of WAL files on disk", value=wal.size_bytes
            )
            yield GaugeMetricFamily("streamhouse_wal_files", "WAL files on disk", value=stats.files)
            yield CounterMetricFamily(
                "streamhouse_wal_appended_bytes", "Bytes written to the WAL", value=stats.bytes
            )
            fsync = SummaryMetricFamily(
                "streamhouse_wal_fsync_seconds", "WAL fsync rounds and the time they took"
            )
            fsync.add_metric([], count_value=stats.fsyncs, sum_value=stats.fsync_seconds_total)
            yield fsync
            yield GaugeMetricFamily(
                "streamhouse_wal_fsync_seconds_max",
                "The slowest WAL fsync round since start",
                value=stats.fsync_seconds_max,
            )
        store_stats = getattr(self.manager.store, "stats", None)
        if store_stats is not None:
            yield from _object_store(store_stats)
        cache = self.manager.cache.stats
        yield GaugeMetricFamily(
            "streamhouse_segment_cache_bytes", "Bytes in the segment cache", value=cache.bytes
        )
        hits = CounterMetricFamily(
            "streamhouse_segment_cache_lookups", "Segment cache lookups", labels=["result"]
        )
        hits.add_metric(["hit"], cache.hits)
        hits.add_metric(["miss"], cache.misses)
        yield hits


def _object_store(stats) -> Iterator[Metric]:  # type: ignore[no-untyped-def]
    requests = CounterMetricFamily(
        "streamhouse_object_store_requests",
        "Object-store requests sent (every attempt), retries and calls refused by the breaker",
        labels=["kind"],
    )
    requests.add_metric(["sent"], stats.requests)
    requests.add_metric(["retried"], stats.retries)
    requests.add_metric(["rejected"], stats.rejected)
    yield requests
    yield CounterMetricFamily(
        "streamhouse_object_store_errors",
        "Object-store operations that failed after their retries",
        value=stats.errors,
    )
    moved = CounterMetricFamily(
        "streamhouse_object_store_bytes", "Payload bytes moved", labels=["direction"]
    )
    moved.add_metric(["in"], stats.bytes_in)
    moved.add_metric(["out"], stats.bytes_out)
    yield moved
    latency = SummaryMetricFamily(
        "streamhouse_object_store_operation_seconds",
        "Object-store operations by kind and their time, retries included",
        labels=["op"],
    )
    for op, count in sorted(stats.op_counts.items()):
        latency.add_metric([op], count_value=count, sum_value=stats.latency_sum_s.get(op, 0.0))
    yield latency


def register_log_collector(
    manager: LogManager, registry: CollectorRegistry = REGISTRY
) -> LogCollector:
    collector = LogCollector(manager)
    registry.register(collector)
    return collector
