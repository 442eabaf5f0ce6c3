"""Prometheus metrics of the log, defined once so every component reports into one registry.

The HTTP `/metrics` endpoint (workbench) exposes ``prometheus_client.REGISTRY``; these
module-level collectors are the conventional prometheus_client shape.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

APPENDED_RECORDS = Counter(
    "streamhouse_log_appended_records_total", "Records appended to partition logs", ["topic"]
)
APPENDED_BYTES = Counter(
    "streamhouse_log_appended_bytes_total", "Batch bytes appended to partition logs", ["topic"]
)
SEGMENT_UPLOADS = Counter(
    "streamhouse_segment_uploads_total", "Sealed segments uploaded and committed", ["outcome"]
)
SEGMENT_UPLOAD_SECONDS = Histogram(
    "streamhouse_segment_upload_seconds", "Seal: encode, upload and commit of one segment"
)
WAL_RECOVERY_DROPPED_BYTES = Counter(
    "streamhouse_wal_recovery_dropped_bytes_total", "Bytes cut from the WAL during recovery"
)
WAL_RECOVERY_DROPPED_BATCHES = Counter(
    "streamhouse_wal_recovery_dropped_batches_total",
    "Replayed WAL batches that could not be placed densely after the committed log",
)
LEASE_CHANGES = Counter(
    "streamhouse_lease_changes_total",
    "Partition lease changes: acquired, released, handed_over, fenced, expired_taken",
    ["reason"],
)
for _reason in ("acquired", "released", "handed_over", "fenced", "expired_taken"):
    LEASE_CHANGES.labels(reason=_reason)  # every reason is exported, at 0 until it happens
LED_PARTITIONS = Gauge("streamhouse_led_partitions", "Partitions this agent leads now")
DUPLICATE_BATCHES = Counter(
    "streamhouse_idempotent_duplicate_batches_total",
    "Retried idempotent-producer batches answered with their original offsets, not stored",
    ["topic"],
)
RETENTION_DELETED_SEGMENTS = Counter(
    "streamhouse_retention_deleted_segments_total", "Segments deleted by retention"
)
OPEN_SEGMENT_BYTES = Gauge(
    "streamhouse_open_segment_bytes", "Bytes held in open and sealing segments in memory"
)
