"""The write-ahead log: batches are durable here before they are acknowledged.

One WAL (a directory of files) serves every partition of a server. A batch is appended before
the produce request is answered, and its file is deleted once every batch in it has been
committed to a segment in the object store. See :mod:`.log` for the durability contract,
:mod:`.format` for the bytes on disk and :mod:`.recovery` for what happens after a crash.
"""

from __future__ import annotations

from streamhouse.broker.wal.config import SyncPolicy, WalConfig
from streamhouse.broker.wal.errors import (
    InvalidEntryError,
    WalClosedError,
    WalError,
    WalFullError,
)
from streamhouse.broker.wal.log import WalEntry, WalStats, WriteAheadLog
from streamhouse.broker.wal.recovery import WalRecoveryReport

__all__ = [
    "InvalidEntryError",
    "SyncPolicy",
    "WalClosedError",
    "WalConfig",
    "WalEntry",
    "WalError",
    "WalFullError",
    "WalRecoveryReport",
    "WalStats",
    "WriteAheadLog",
]
