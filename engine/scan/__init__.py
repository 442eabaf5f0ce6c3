"""Point-in-time scans: a topic's segments and in-memory tail, pruned and decoded to Arrow."""

from __future__ import annotations

from .reader import SCAN_SCHEMA, ScanStats, TopicScan, open_scan
from .spec import ScanSpec

__all__ = ["SCAN_SCHEMA", "ScanSpec", "ScanStats", "TopicScan", "open_scan"]
