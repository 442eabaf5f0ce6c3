"""Settings of the log layer, passed in (never read from globals)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from streamhouse.broker.wal import SyncPolicy


class Acks(enum.IntEnum):
    """What an append waits for before it returns, with Kafka's numbering."""

    NONE = 0  # nothing: the batch is handed to the log
    LEADER = 1  # in memory and written to the WAL (fsynced too when the sync policy is `always`)
    ALL = -1  # fsynced in the WAL; or committed to the object store when the WAL is off / required


@dataclass(frozen=True)
class LogConfig:
    """How one agent runs its partition logs.

    Attributes:
        data_dir: holds the WAL (``wal/``), the segment cache (``cache/``) and the agent id.
        agent_id: stable identity used as lease holder; read from/written to ``data_dir/agent-id``
            when empty, so a restarted agent re-acquires its own leases at once.
        wal_enabled: with the WAL off, ``acks=all`` waits for the segment commit instead.
        commit_on_all: make ``acks=all`` wait for the object-store commit even with the WAL on
            (needed with several agents: a dead agent's local WAL is gone with its machine).
        advertised_address: what other agents and clients dial to reach this agent; it is
            registered with the agent and named in NotLeaderError for partitions led here.
        kafka_address: the ``host:port`` Kafka clients dial to reach this agent's Kafka listener
            (empty when it has none); Metadata responses of every agent name it.
        group_partitions: partitions of the internal consumer-groups topic, created at first
            start; a group is coordinated by the leader of its partition.
        handover_timeout_s: how long a hand-over may take to commit what memory holds before
            it is abandoned and the partition stays here.
    """

    data_dir: Path
    agent_id: str = ""
    advertised_address: str = ""
    kafka_address: str = ""
    wal_enabled: bool = True
    wal_sync_policy: SyncPolicy = SyncPolicy.INTERVAL
    wal_sync_interval_ms: int = 100
    wal_max_bytes: int = 1024 * 1024 * 1024
    wal_file_max_bytes: int = 64 * 1024 * 1024
    commit_on_all: bool = False
    cache_max_bytes: int = 1024 * 1024 * 1024
    segment_compression: str = "lz4"
    lease_ttl_ms: int = 10_000
    seal_check_interval_ms: int = 50
    retention_check_interval_ms: int = 30_000
    upload_concurrency: int = 4
    upload_retry_max_s: float = 5.0
    reader_cache_size: int = 256
    max_sealing_segments: int = 4  # appends wait while this many sealed segments await upload
    group_partitions: int = 8
    handover_timeout_s: float = 30.0
