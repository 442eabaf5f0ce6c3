"""Prometheus metrics of consumer groups, module-level like the rest of the broker's."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge

REBALANCES = Counter(
    "streamhouse_group_rebalances_total",
    "Completed join phases (each starts a new generation) per consumer group",
    ["group"],
)
MEMBERS = Gauge("streamhouse_group_members", "Members currently in a consumer group", ["group"])


def forget(group: str) -> None:
    """Drops a deleted group's series so label sets do not pile up over time."""
    for metric in (REBALANCES, MEMBERS):
        with contextlib.suppress(KeyError):
            metric.remove(group)
