"""Request-level Prometheus metrics shared by every front door (gRPC, REST, Kafka)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

PRODUCE_RECORDS = Counter(
    "streamhouse_produce_records_total", "Records accepted by produce requests", ["topic"]
)
PRODUCE_BYTES = Counter(
    "streamhouse_produce_bytes_total", "Record batch bytes accepted by produce requests", ["topic"]
)
PRODUCE_LATENCY = Histogram(
    "streamhouse_produce_latency_seconds",
    "Produce request latency, from receipt to acknowledgement",
    ["acks"],
    buckets=LATENCY_BUCKETS,
)
FETCH_RECORDS = Counter(
    "streamhouse_fetch_records_total", "Records returned by fetch requests", ["topic"]
)
FETCH_BYTES = Counter(
    "streamhouse_fetch_bytes_total", "Record batch bytes returned by fetch requests", ["topic"]
)
FETCH_LATENCY = Histogram(
    "streamhouse_fetch_latency_seconds",
    "Fetch request latency including long-poll waits",
    buckets=LATENCY_BUCKETS,
)
REQUEST_ERRORS = Counter(
    "streamhouse_request_errors_total", "Requests answered with an error", ["api", "reason"]
)
GROUP_LAG = Gauge(
    "streamhouse_group_lag_records",
    "End offset minus committed offset, per group partition (updated on commit and describe)",
    ["group", "topic", "partition"],
)
