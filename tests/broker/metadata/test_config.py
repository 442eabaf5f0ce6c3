"""TopicConfig: Kafka-style names and string values in, validated typed settings out."""

from __future__ import annotations

import pytest
from streamhouse.broker.metadata import InvalidConfigError, TopicConfig


def test_defaults() -> None:
    config = TopicConfig()
    assert config.retention_ms == 7 * 24 * 3600 * 1000
    assert config.retention_bytes == -1
    assert config.segment_bytes == 16 * 1024 * 1024
    assert config.segment_ms == 1000
    assert config.cleanup_policy == "delete"
    assert config.max_message_bytes == 1024 * 1024 + 12
    assert config.wal_sync is None


def test_kafka_names_attribute_names_and_string_values() -> None:
    config = TopicConfig().with_changes(
        {
            "retention.ms": "60000",
            "retention.bytes": " 1048576 ",
            "segment_bytes": 4096,
            "segment.ms": "+15",
            "max.message.bytes": "200",
            "wal.sync": "ALWAYS",
            "cleanup.policy": "delete, compact",
        }
    )
    assert config == TopicConfig(
        retention_ms=60_000,
        retention_bytes=1_048_576,
        segment_bytes=4096,
        segment_ms=15,
        max_message_bytes=200,
        wal_sync="always",
        cleanup_policy="compact,delete",
    )


def test_none_resets_to_the_default() -> None:
    changed = TopicConfig(retention_ms=5, wal_sync="never")
    reset = changed.with_changes({"retention.ms": None, "wal_sync": None})
    assert reset == TopicConfig()


def test_minus_one_means_unlimited_retention() -> None:
    config = TopicConfig().with_changes({"retention.ms": "-1", "retention.bytes": -1})
    assert (config.retention_ms, config.retention_bytes) == (-1, -1)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"no.such.key": "1"}, "no.such.key"),
        ({"retention_ms_typo": 1}, "retention_ms_typo"),
        ({"retention.ms": "1e3"}, "retention.ms"),
        ({"retention.ms": "abc"}, "retention.ms"),
        ({"retention.ms": 1.5}, "retention.ms"),
        ({"retention.ms": True}, "retention.ms"),
        ({"retention.ms": "-2"}, "retention.ms"),
        ({"retention.ms": "9" * 5000}, "retention.ms"),
        ({"retention.ms": str(2**63)}, "retention.ms"),
        ({"segment.bytes": 0}, "segment.bytes"),
        ({"segment.bytes": 2**31}, "segment.bytes"),
        ({"segment.ms": "0"}, "segment.ms"),
        ({"max.message.bytes": -1}, "max.message.bytes"),
        ({"cleanup.policy": "shred"}, "cleanup.policy"),
        ({"cleanup.policy": 1}, "cleanup.policy"),
        ({"wal.sync": "sometimes"}, "wal.sync"),
        ({"wal.sync": ""}, "wal.sync"),
    ],
)
def test_bad_changes_name_the_key_and_change_nothing(changes, named) -> None:
    original = TopicConfig(segment_ms=77)
    with pytest.raises(InvalidConfigError) as info:
        original.with_changes({"segment.ms": 5, **changes})
    assert named in str(info.value)
    assert original.segment_ms == 77


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(InvalidConfigError, match="segment"):
        TopicConfig(segment_bytes=-3)
    with pytest.raises(InvalidConfigError, match="integer"):
        TopicConfig(retention_ms="5")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="cleanup"):
        TopicConfig(cleanup_policy="never")


def test_to_kafka_dict_round_trips() -> None:
    config = TopicConfig(retention_ms=1, segment_bytes=99, cleanup_policy="compact")
    as_kafka = config.to_kafka_dict()
    assert as_kafka["retention.ms"] == "1"
    assert as_kafka["segment.bytes"] == "99"
    assert as_kafka["cleanup.policy"] == "compact"
    assert "wal.sync" not in as_kafka  # unset: the server's policy applies
    assert all(isinstance(v, str) for v in as_kafka.values())
    assert TopicConfig().with_changes(as_kafka) == config
    with_wal = TopicConfig(wal_sync="interval")
    assert TopicConfig().with_changes(with_wal.to_kafka_dict()) == with_wal


def test_stored_form_ignores_keys_of_a_newer_version() -> None:
    data = {**TopicConfig(segment_ms=3).to_json_dict(), "from.the.future": 1}
    assert TopicConfig.from_json_dict(data) == TopicConfig(segment_ms=3)
