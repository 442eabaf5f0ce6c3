"""Prometheus metrics of the Kafka listener (produce/fetch volumes are counted by the service)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from streamhouse.broker.service.metrics import LATENCY_BUCKETS

CONNECTIONS = Gauge("streamhouse_kafka_connections", "Open Kafka client connections")
CLOSED_CONNECTIONS = Counter(
    "streamhouse_kafka_closed_connections_total",
    "Kafka connections the server closed, by reason",
    ["reason"],
)
REQUEST_LATENCY = Histogram(
    "streamhouse_kafka_request_latency_seconds",
    "Kafka request handling time by API",
    ["api"],
    buckets=LATENCY_BUCKETS,
)
REQUEST_ERRORS = Counter(
    "streamhouse_kafka_request_failures_total",
    "Kafka requests whose handler failed unexpectedly (the connection is closed)",
    ["api"],
)
