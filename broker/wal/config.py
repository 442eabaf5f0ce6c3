"""Settings of the write-ahead log, passed in by whoever assembles the server."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class SyncPolicy(enum.StrEnum):
    """When an append counts as durable.

    The server picks a default and a topic may override it per append, because the price of an
    fsync is paid per topic: a metrics topic can live with ``never`` while an orders topic with
    ``acks=all`` needs ``always``.
    """

    ALWAYS = "always"  # fsynced before the append returns (concurrent appends share one fsync)
    INTERVAL = "interval"  # handed to the OS now, fsynced by a background task soon after
    NEVER = "never"  # handed to the OS only; survives a process crash, not a power loss


@dataclass(frozen=True)
class WalConfig:
    """Where the WAL lives and how hard it works to make appends durable.

    Attributes:
        directory: the WAL's own directory (created on open); one per server, shared by all
            partitions.
        sync_policy: the default for appends that do not pass ``sync=``.
        sync_interval_ms: how often the background task fsyncs ``interval`` appends.
        file_max_bytes: a file that would grow beyond this is closed and a new one started, so
            that committed data can be deleted in file-sized pieces.
        max_bytes: total bytes on disk; an append that would exceed it fails with
            :class:`~streamhouse.broker.wal.WalFullError` (backpressure until segments commit).
    """

    directory: Path
    sync_policy: SyncPolicy = SyncPolicy.INTERVAL
    sync_interval_ms: int = 100
    file_max_bytes: int = 64 * 1024 * 1024
    max_bytes: int = 1024 * 1024 * 1024

    def __post_init__(self) -> None:
        # Coerce the forgiving forms (str paths, "always") once, so the log never has to.
        object.__setattr__(self, "directory", Path(self.directory))
        object.__setattr__(self, "sync_policy", SyncPolicy(self.sync_policy))
        for name in ("sync_interval_ms", "file_max_bytes", "max_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"WalConfig.{name} must be a positive integer, got {value!r}")
