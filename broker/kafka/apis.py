"""The API versions the listener advertises, each within what the generated specs define.

Ranges follow what librdkafka, kafka-python and aiokafka negotiate (../shared/kafka-protocol/
NOTES.md). Fetch stops at v12 (v13+ address topics by id only); Fetch starts at v4 and ListOffsets
stops at v7 because older/newer versions need formats or offset specs we do not serve. Produce
is advertised from v0 (librdkafka needs it) but only the v2 record format is accepted.
"""

from __future__ import annotations

from streamhouse.broker.kafka.protocol.codec import valid_versions

PRODUCE = 0
FETCH = 1
LIST_OFFSETS = 2
METADATA = 3
OFFSET_COMMIT = 8
OFFSET_FETCH = 9
FIND_COORDINATOR = 10
JOIN_GROUP = 11
HEARTBEAT = 12
LEAVE_GROUP = 13
SYNC_GROUP = 14
DESCRIBE_GROUPS = 15
LIST_GROUPS = 16
SASL_HANDSHAKE = 17
API_VERSIONS = 18
CREATE_TOPICS = 19
DELETE_TOPICS = 20
DELETE_RECORDS = 21
INIT_PRODUCER_ID = 22
OFFSET_FOR_LEADER_EPOCH = 23
DESCRIBE_CONFIGS = 32
ALTER_CONFIGS = 33
SASL_AUTHENTICATE = 36
CREATE_PARTITIONS = 37
DELETE_GROUPS = 42
INCREMENTAL_ALTER_CONFIGS = 44
DESCRIBE_CLUSTER = 60

NAMES = {
    PRODUCE: "Produce",
    FETCH: "Fetch",
    LIST_OFFSETS: "ListOffsets",
    METADATA: "Metadata",
    OFFSET_COMMIT: "OffsetCommit",
    OFFSET_FETCH: "OffsetFetch",
    FIND_COORDINATOR: "FindCoordinator",
    JOIN_GROUP: "JoinGroup",
    HEARTBEAT: "Heartbeat",
    LEAVE_GROUP: "LeaveGroup",
    SYNC_GROUP: "SyncGroup",
    DESCRIBE_GROUPS: "DescribeGroups",
    LIST_GROUPS: "ListGroups",
    SASL_HANDSHAKE: "SaslHandshake",
    API_VERSIONS: "ApiVersions",
    CREATE_TOPICS: "CreateTopics",
    DELETE_TOPICS: "DeleteTopics",
    DELETE_RECORDS: "DeleteRecords",
    INIT_PRODUCER_ID: "InitProducerId",
    OFFSET_FOR_LEADER_EPOCH: "OffsetForLeaderEpoch",
    DESCRIBE_CONFIGS: "DescribeConfigs",
    ALTER_CONFIGS: "AlterConfigs",
    SASL_AUTHENTICATE: "SaslAuthenticate",
    CREATE_PARTITIONS: "CreatePartitions",
    DELETE_GROUPS: "DeleteGroups",
    INCREMENTAL_ALTER_CONFIGS: "IncrementalAlterConfigs",
    DESCRIBE_CLUSTER: "DescribeCluster",
}

# Narrower than the spec where we do not serve the whole range; None means the spec's range.
_LIMITS: dict[int, tuple[int | None, int | None]] = {
    FETCH: (4, 12),
    LIST_OFFSETS: (None, 7),
    SASL_HANDSHAKE: (1, 1),  # v0 sends the token as a bare frame; clients negotiate v1
}


def advertised_range(api_key: int) -> tuple[int, int]:
    first, last = valid_versions(NAMES[api_key] + "Request")
    low, high = _LIMITS.get(api_key, (None, None))
    low = first if low is None else max(first, low)
    high = last if high is None else min(last, high)
    return low, high


SUPPORTED: dict[int, tuple[int, int]] = {key: advertised_range(key) for key in NAMES}
