"""Per-topic configuration: one frozen value, validated on construction.

Kafka clients speak in dotted string names and string values (``"retention.ms": "60000"``);
the rest of the broker reads typed attributes. :meth:`TopicConfig.with_changes` is the one
place the two meet, so a bad value is rejected with the key's name before anything is stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streamhouse.broker.metadata.errors import InvalidConfigError

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

CLEANUP_POLICIES = ("delete", "compact", "compact,delete")
WAL_SYNC_POLICIES = ("always", "interval", "never")

# Kafka name -> attribute name. Attribute names are accepted as keys too.
KAFKA_NAMES: dict[str, str] = {
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "segment.bytes": "segment_bytes",
    "segment.ms": "segment_ms",
    "cleanup.policy": "cleanup_policy",
    "max.message.bytes": "max_message_bytes",
    "wal.sync": "wal_sync",
}
_ATTRIBUTE_TO_KAFKA = {attr: name for name, attr in KAFKA_NAMES.items()}

# attribute -> (smallest, largest) for the integer settings; -1 means "no limit" where allowed.
_INT_RANGES: dict[str, tuple[int, int]] = {
    "retention_ms": (-1, INT64_MAX),
    "retention_bytes": (-1, INT64_MAX),
    "segment_bytes": (1, INT32_MAX),
    "segment_ms": (1, INT64_MAX),
    "max_message_bytes": (1, INT32_MAX),
}


@dataclass(frozen=True)
class TopicConfig:
    """Settings of one topic; every instance is valid (checked in ``__post_init__``).

    Attributes:
        retention_ms: Segments whose newest record is older than this are deleted; -1 keeps
            them forever.
        retention_bytes: Per partition; the oldest segments are deleted while the partition is
            larger. -1 means unlimited.
        segment_bytes: The open segment is sealed once it holds this many bytes.
        segment_ms: ... or once it has been open this long.
        cleanup_policy: ``delete``, ``compact`` or ``compact,delete`` (stored and validated;
            compaction is not implemented yet).
        max_message_bytes: The largest record batch a producer may send.
        wal_sync: Overrides the server's WAL sync policy for this topic (``always``,
            ``interval``, ``never``); None follows the server.
    """

    retention_ms: int = 7 * 24 * 3600 * 1000
    retention_bytes: int = -1
    segment_bytes: int = 16 * 1024 * 1024
    segment_ms: int = 1000
    cleanup_policy: str = "delete"
    max_message_bytes: int = 1024 * 1024 + 12
    wal_sync: str | None = None

    def __post_init__(self) -> None:
        for attr, (low, high) in _INT_RANGES.items():
            value = getattr(self, attr)
            if type(value) is not int:
                raise InvalidConfigError(
                    f"config {_ATTRIBUTE_TO_KAFKA[attr]} must be an integer, got {value!r}"
                )
            if not low <= value <= high:
                raise InvalidConfigError(
                    f"config {_ATTRIBUTE_TO_KAFKA[attr]}={value} is out of range [{low}, {high}]"
                )
        if self.cleanup_policy not in CLEANUP_POLICIES:
            raise InvalidConfigError(
                f"config cleanup.policy={self.cleanup_policy!r} is not one of {CLEANUP_POLICIES}"
            )
        if self.wal_sync is not None and self.wal_sync not in WAL_SYNC_POLICIES:
            raise InvalidConfigError(
                f"config wal.sync={self.wal_sync!r} is not one of {WAL_SYNC_POLICIES} or unset"
            )

    def with_changes(self, changes: Mapping[str, str | int | None]) -> TopicConfig:
        """Returns a copy with ``changes`` applied, as Kafka's AlterConfigs would.

        Args:
            changes: Keys are Kafka names (``"retention.ms"``) or attribute names
                (``"retention_ms"``); values are ints or their decimal strings. None resets the
                key to its default (Kafka's DELETE operation).

        Raises:
            InvalidConfigError: Naming the first unknown key or bad value; ``self`` is unchanged.
        """
        updates: dict[str, Any] = {}
        for key, raw in changes.items():
            attr = KAFKA_NAMES.get(key, key)
            if attr not in _ATTRIBUTE_TO_KAFKA:
                raise InvalidConfigError(f"unknown topic config {key!r}")
            updates[attr] = _DEFAULTS[attr] if raw is None else _parse(attr, key, raw)
        return dataclasses.replace(self, **updates)

    def to_kafka_dict(self) -> dict[str, str]:
        """The settings under their Kafka names with string values (DescribeConfigs).

        ``wal.sync`` is left out while unset, so the result round-trips through
        :meth:`with_changes`.
        """
        out: dict[str, str] = {}
        for attr, name in _ATTRIBUTE_TO_KAFKA.items():
            value = getattr(self, attr)
            if value is not None:
                out[name] = str(value)
        return out

    def to_json_dict(self) -> dict[str, Any]:
        """Attribute name -> value, as stored in the metadata tables."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> TopicConfig:
        """Inverse of :meth:`to_json_dict`; keys this version does not know are ignored."""
        return cls(**{k: v for k, v in data.items() if k in _ATTRIBUTE_TO_KAFKA})


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(TopicConfig)}


def _parse(attr: str, key: str, raw: object) -> object:
    """Converts one incoming value to the attribute's type, naming ``key`` on failure."""
    if attr in _INT_RANGES:
        if type(raw) is int:
            return raw
        if isinstance(raw, str):
            text = raw.strip()
            digits = text[1:] if text[:1] in "+-" else text
            if digits.isascii() and digits.isdigit() and len(digits) <= 20:
                return int(text)
        raise InvalidConfigError(f"config {key} must be an integer, got {raw!r}")
    if not isinstance(raw, str):
        raise InvalidConfigError(f"config {key} must be a string, got {raw!r}")
    value = raw.strip().lower()
    if attr == "cleanup_policy":
        parts = sorted({p.strip() for p in value.split(",")})
        value = ",".join(parts)
    return value
