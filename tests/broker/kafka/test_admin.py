"""Topic admin and configs over the Kafka protocol, as real admin clients use them.

confluent-kafka (librdkafka), kafka-python and aiokafka each negotiate their own versions, so
each is driven through the calls it offers; a raw socket then walks every advertised version.
All tests share one server; each uses its own topics.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import Future

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)
from streamhouse.broker.kafka import apis

from tests.broker.kafka.conftest import KafkaSocket, unique_topic

TIMEOUT = 15


@pytest.fixture(scope="module")
def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


@pytest.fixture(scope="module")
def kp_admin(bootstrap: str) -> Iterator:
    from kafka.admin import KafkaAdminClient

    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    yield client
    client.close()


def error_of(future: Future) -> KafkaError | None:
    """The Kafka error a confluent-kafka admin future failed with, or None on success."""
    try:
        future.result(TIMEOUT)
    except KafkaException as exc:
        return exc.args[0]
    return None


def partitions_of(admin: AdminClient, topic: str) -> int | None:
    found = admin.list_topics(timeout=TIMEOUT).topics.get(topic)
    return None if found is None else len(found.partitions)


def topic_configs(admin: AdminClient, topic: str) -> dict[str, ConfigEntry]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([resource])[resource].result(TIMEOUT)


def create(admin: AdminClient, topic: str, partitions: int = 1, **config: str) -> None:
    new = NewTopic(topic, partitions, config={k.replace("_", "."): v for k, v in config.items()})
    assert error_of(admin.create_topics([new])[topic]) is None


# ------------------------------------------------------------------------- confluent-kafka
def test_create_topics_with_partitions_and_configs(admin: AdminClient) -> None:
    topic, default = unique_topic(), unique_topic()
    futures = admin.create_topics(
        [
            NewTopic(topic, 3, config={"retention.ms": "60000", "cleanup.policy": "compact"}),
            NewTopic(default),  # -1 partitions: the server default (1)
        ]
    )
    assert [error_of(f) for f in futures.values()] == [None, None]
    assert partitions_of(admin, topic) == 3
    assert partitions_of(admin, default) == 1
    configs = topic_configs(admin, topic)
    assert configs["retention.ms"].value == "60000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not configs["retention.ms"].is_default
    assert configs["cleanup.policy"].value == "compact"
    assert configs["segment.bytes"].is_default


def test_create_topics_refuses_bad_entries_one_by_one(admin: AdminClient) -> None:
    good, existing = unique_topic(), unique_topic()
    create(admin, existing)
    cases = {
        good: None,
        existing: KafkaError.TOPIC_ALREADY_EXISTS,
        "bad name!": KafkaError.TOPIC_EXCEPTION,
        "__reserved": KafkaError.TOPIC_EXCEPTION,
        unique_topic("rf"): KafkaError.INVALID_REPLICATION_FACTOR,
        unique_topic("cfg"): KafkaError.INVALID_CONFIG,
        unique_topic("val"): KafkaError.INVALID_CONFIG,
        unique_topic("zero"): KafkaError.INVALID_PARTITIONS,
    }
    names = list(cases)
    futures = admin.create_topics(
        [
            NewTopic(good, 2, replication_factor=3),  # any positive factor is accepted
            NewTopic(existing, 1),
            NewTopic("bad name!", 1),
            NewTopic("__reserved", 1),
            NewTopic(names[4], 1, replication_factor=0),
            NewTopic(names[5], 1, config={"no.such.config": "1"}),
            NewTopic(names[6], 1, config={"retention.ms": "soon"}),
            NewTopic(names[7], 0),
        ]
    )
    errors = {name: error_of(future) for name, future in futures.items()}
    assert {name: e and e.code() for name, e in errors.items()} == cases
    assert "no.such.config" in errors[names[5]].str()
    assert "retention.ms" in errors[names[6]].str()
    assert "reserved" in errors["__reserved"].str()
    assert partitions_of(admin, good) == 2
    listed = admin.list_topics(timeout=TIMEOUT).topics
    assert not {"bad name!", "__reserved", *names[4:]} & set(listed)


def test_validate_only_creates_nothing(admin: AdminClient) -> None:
    topic = unique_topic()
    futures = admin.create_topics([NewTopic(topic, 4)], validate_only=True)
    assert error_of(futures[topic]) is None
    assert partitions_of(admin, topic) is None
    bad = admin.create_topics([NewTopic(topic, 1, replication_factor=0)], validate_only=True)
    assert error_of(bad[topic]).code() == KafkaError.INVALID_REPLICATION_FACTOR


def test_delete_topics(admin: AdminClient) -> None:
    topic = unique_topic()
    create(admin, topic, 2)
    missing = unique_topic("missing")
    futures = admin.delete_topics([topic, missing])
    assert error_of(futures[topic]) is None
    assert error_of(futures[missing]).code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert partitions_of(admin, topic) is None
    # The name is free again.
    create(admin, topic, 1)
    assert partitions_of(admin, topic) == 1


def test_create_partitions(admin: AdminClient) -> None:
    topic = unique_topic()
    create(admin, topic, 2)
    same = admin.create_partitions([NewPartitions(topic, 2)])[topic]
    assert error_of(same).code() == KafkaError.INVALID_PARTITIONS
    checked = admin.create_partitions([NewPartitions(topic, 5)], validate_only=True)[topic]
    assert error_of(checked) is None
    assert partitions_of(admin, topic) == 2
    missing = unique_topic("missing")
    futures = admin.create_partitions([NewPartitions(topic, 5), NewPartitions(missing, 3)])
    assert error_of(futures[topic]) is None
    assert error_of(futures[missing]).code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert partitions_of(admin, topic) == 5
    fewer = admin.create_partitions([NewPartitions(topic, 3)])[topic]
    assert error_of(fewer).code() == KafkaError.INVALID_PARTITIONS
    assert "5 partitions" in error_of(fewer).str()


def test_describe_topic_configs_lists_every_supported_key(admin: AdminClient) -> None:
    topic = unique_topic()
    create(admin, topic, 1, max_message_bytes="5000")
    configs = topic_configs(admin, topic)
    assert set(configs) == {
        "cleanup.policy",
        "max.message.bytes",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.ms",
        "wal.sync",
    }
    assert configs["max.message.bytes"].value == "5000"
    assert configs["retention.ms"].value == str(7 * 24 * 3600 * 1000)
    assert configs["retention.ms"].is_default
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["wal.sync"].value == "interval"  # the server's policy, followed while unset
    assert not any(entry.is_read_only or entry.is_sensitive for entry in configs.values())
    synonyms = configs["max.message.bytes"].synonyms
    assert synonyms["message.max.bytes"].value == str(1024 * 1024 + 12)
    missing = ConfigResource(ResourceType.TOPIC, unique_topic("missing"))
    failed = error_of(admin.describe_configs([missing])[missing])
    assert failed.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_describe_broker_configs(admin: AdminClient) -> None:
    node = next(iter(admin.list_topics(timeout=TIMEOUT).brokers))
    resource = ConfigResource(ResourceType.BROKER, str(node))
    configs = admin.describe_configs([resource])[resource].result(TIMEOUT)
    assert configs["broker.id"].value == str(node)
    assert configs["num.partitions"].value == "1"
    assert configs["auto.create.topics.enable"].value == "true"
    assert configs["message.max.bytes"].value == str(1024 * 1024 + 12)
    assert configs["log.retention.ms"].value == str(7 * 24 * 3600 * 1000)
    assert configs["sasl.enabled.mechanisms"].value == ""
    assert all(entry.is_read_only for entry in configs.values())


def test_alter_configs_replaces_the_whole_set(admin: AdminClient) -> None:
    topic = unique_topic()
    create(admin, topic, 1, retention_ms="60000")
    resource = ConfigResource(ResourceType.TOPIC, topic, set_config={"segment.ms": "5000"})
    with pytest.warns(DeprecationWarning):
        futures = admin.alter_configs([resource])
    assert error_of(futures[resource]) is None
    configs = topic_configs(admin, topic)
    assert configs["segment.ms"].value == "5000"
    assert configs["retention.ms"].is_default  # not named, so back to the default
    bad = ConfigResource(ResourceType.TOPIC, topic, set_config={"segment.ms": "-5"})
    with pytest.warns(DeprecationWarning):
        failed = error_of(admin.alter_configs([bad])[bad])
    assert failed.code() == KafkaError.INVALID_CONFIG
    assert topic_configs(admin, topic)["segment.ms"].value == "5000"


def incremental(admin: AdminClient, topic: str, *entries: ConfigEntry) -> KafkaError | None:
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=list(entries))
    return error_of(admin.incremental_alter_configs([resource])[resource])


def test_incremental_alter_configs(admin: AdminClient) -> None:
    topic = unique_topic()
    create(admin, topic, 1, retention_ms="60000")
    assert (
        incremental(
            admin,
            topic,
            ConfigEntry("segment.ms", "7000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry(
                "cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND
            ),
        )
        is None
    )
    configs = topic_configs(admin, topic)
    assert configs["segment.ms"].value == "7000"
    assert configs["retention.ms"].value == "60000"  # untouched keys keep their values
    assert configs["cleanup.policy"].value == "compact,delete"
    delete = AlterConfigOpType.DELETE
    subtract = AlterConfigOpType.SUBTRACT
    assert (
        incremental(
            admin,
            topic,
            ConfigEntry("retention.ms", None, incremental_operation=delete),
            ConfigEntry("cleanup.policy", "delete", incremental_operation=subtract),
        )
        is None
    )
    configs = topic_configs(admin, topic)
    assert configs["retention.ms"].is_default
    assert configs["cleanup.policy"].value == "compact"


def test_incremental_alter_configs_refusals_change_nothing(admin: AdminClient) -> None:
    topic = unique_topic()
    create(admin, topic, 1, segment_ms="3000")
    append = AlterConfigOpType.APPEND
    set_ = AlterConfigOpType.SET
    cases = [
        ConfigEntry("retention.ms", "5", incremental_operation=append),  # not a list config
        ConfigEntry("no.such.config", "1", incremental_operation=set_),
        ConfigEntry("max.message.bytes", "big", incremental_operation=set_),
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT),
    ]
    for entry in cases:
        changed = ConfigEntry("segment.ms", "9000", incremental_operation=set_)
        failed = incremental(admin, topic, changed, entry)
        assert failed is not None and failed.code() == KafkaError.INVALID_CONFIG, entry
    assert "list" in incremental(admin, topic, cases[0]).str()
    assert topic_configs(admin, topic)["segment.ms"].value == "3000"


def test_broker_configs_cannot_be_altered(admin: AdminClient) -> None:
    node = next(iter(admin.list_topics(timeout=TIMEOUT).brokers))
    resource = ConfigResource(
        ResourceType.BROKER,
        str(node),
        incremental_configs=[
            ConfigEntry("num.partitions", "4", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    failed = error_of(admin.incremental_alter_configs([resource])[resource])
    assert failed.code() == KafkaError.INVALID_REQUEST
    assert "streamhouse serve" in failed.str()


def produce_error(bootstrap: str, topic: str, value: bytes) -> KafkaError | None:
    outcome: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10_000})
    producer.produce(topic, value, on_delivery=lambda err, msg: outcome.append(err))
    assert producer.flush(TIMEOUT) == 0
    return outcome[0]


def test_max_message_bytes_set_over_kafka_is_enforced_on_produce(
    admin: AdminClient, bootstrap: str
) -> None:
    topic = unique_topic()
    create(admin, topic, 1)
    assert produce_error(bootstrap, topic, b"x" * 5000) is None
    set_ = AlterConfigOpType.SET
    limit = ConfigEntry("max.message.bytes", "1000", incremental_operation=set_)
    assert incremental(admin, topic, limit) is None
    refused = produce_error(bootstrap, topic, b"x" * 5000)
    assert refused is not None and refused.code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert produce_error(bootstrap, topic, b"x" * 500) is None


# ---------------------------------------------------------------------------- kafka-python
def test_kafka_python_admin_round_trip(kp_admin) -> None:
    from kafka.admin import ConfigResource as KpResource
    from kafka.admin import ConfigResourceType

    topic = unique_topic()
    created = kp_admin.create_topics(
        {topic: {"num_partitions": 2, "configs": {"retention.ms": "90000"}}}
    )
    (result,) = created["topics"]
    assert (result["error_code"], result["num_partitions"]) == (0, 2)
    assert result["configs"]["retention.ms"]["value"] == "90000"
    assert kp_admin.create_partitions({topic: 3})
    (described,) = kp_admin.describe_topics([topic])
    assert len(described["partitions"]) == 3

    only = KpResource(ConfigResourceType.TOPIC, topic, ["retention.ms", "segment.ms"])
    configs = kp_admin.describe_configs([only], config_filter="all")["topic"][topic]
    assert set(configs) == {"retention.ms", "segment.ms"}
    assert configs["retention.ms"]["value"] == "90000"

    legacy = KpResource(ConfigResourceType.TOPIC, topic, {"segment.ms": "4000"})
    assert kp_admin.alter_configs([legacy], incremental=False) == {"topic": {topic: "OK"}}
    configs = kp_admin.describe_configs([KpResource(ConfigResourceType.TOPIC, topic)])
    # kafka-python fills in the other modified keys itself, so retention.ms survives.
    assert {k: v["value"] for k, v in configs["topic"][topic].items()} == {
        "retention.ms": "90000",
        "segment.ms": "4000",
    }
    deleted = kp_admin.delete_topics([topic])
    assert [t["error_code"] for t in deleted["topics"]] == [0]
    assert topic not in kp_admin.list_topics()


def test_kafka_python_deletes_by_topic_id(kp_admin) -> None:
    topic = unique_topic()
    created = kp_admin.create_topics({topic: {"num_partitions": 1}})
    topic_id = uuid.UUID(created["topics"][0]["topic_id"])
    (described,) = kp_admin.describe_topics([topic])
    assert uuid.UUID(described["topic_id"]) == topic_id
    unknown = kp_admin.delete_topics([uuid.uuid4()], raise_errors=False)
    assert [t["error_code"] for t in unknown["topics"]] == [KafkaError.UNKNOWN_TOPIC_ID]
    deleted = kp_admin.delete_topics([topic_id])
    assert [(t["name"], t["error_code"]) for t in deleted["topics"]] == [(topic, 0)]
    assert topic not in kp_admin.list_topics()


# -------------------------------------------------------------------------------- aiokafka
def test_aiokafka_admin(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
    from aiokafka.admin import NewTopic as AioTopic
    from aiokafka.admin.config_resource import ConfigResource as AioResource
    from aiokafka.admin.config_resource import ConfigResourceType as AioType

    topic = unique_topic()

    async def run() -> None:
        client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        await client.start()
        try:
            created = await client.create_topics(
                [
                    AioTopic(topic, 2, 1, topic_configs={"retention.ms": "70000"}),
                    AioTopic("__nope", 1, 1),
                ]
            )
            codes = {name: code for name, code, *_ in created.topic_errors}
            assert codes == {topic: 0, "__nope": KafkaError.TOPIC_EXCEPTION}
            (described,) = await client.describe_configs([AioResource(AioType.TOPIC, topic)])
            (resource,) = described.resources
            assert resource[0] == 0
            entries = {entry[0]: entry[1] for entry in resource[4]}
            assert entries["retention.ms"] == "70000"
            assert entries["segment.bytes"] == str(16 * 1024 * 1024)
            altered = await client.alter_configs(
                [AioResource(AioType.TOPIC, topic, {"retention.bytes": "1000000"})]
            )
            assert [r[0] for r in altered[0].resources] == [0]
            grown = await client.create_partitions({topic: NewPartitions(4)})
            assert [e[1] for e in grown.topic_errors] == [0]
            deleted = await client.delete_topics([topic])
            assert [e[1] for e in deleted.topic_error_codes] == [0]
        finally:
            await client.close()

    asyncio.run(run())


# ------------------------------------------------------------------ every advertised version
def versions(api_key: int) -> range:
    low, high = apis.SUPPORTED[api_key]
    return range(low, high + 1)


def metadata_topic(conn: KafkaSocket, topic: str) -> dict:
    out = conn.request(
        apis.METADATA, 12, {"topics": [{"name": topic}], "allow_auto_topic_creation": False}
    )
    return out["topics"][0]


@pytest.mark.parametrize("version", versions(apis.CREATE_TOPICS))
def test_create_topics_every_version(kafka_server, version: int) -> None:
    topic = unique_topic()
    with KafkaSocket(kafka_server.kafka_port) as conn:
        out = conn.request(
            apis.CREATE_TOPICS,
            version,
            {
                "topics": [
                    {
                        "name": topic,
                        "num_partitions": 2,
                        "replication_factor": -1,
                        "assignments": [],
                        "configs": [{"name": "segment.ms", "value": "2500"}],
                    },
                    {
                        "name": unique_topic("assigned"),
                        "num_partitions": -1,
                        "replication_factor": -1,
                        "assignments": [{"partition_index": 0, "broker_ids": [1]}],
                        "configs": [],
                    },
                ],
                "timeout_ms": 5000,
            },
        )
        created, assigned = out["topics"]
        assert (created["name"], created["error_code"]) == (topic, 0)
        assert assigned["error_code"] == KafkaError.INVALID_REQUEST
        if version >= 1:
            assert "assignment" in assigned["error_message"]
        if version >= 5:
            assert (created["num_partitions"], created["replication_factor"]) == (2, 1)
            configs = {c["name"]: c for c in created["configs"]}
            assert configs["segment.ms"]["value"] == "2500"
            assert configs["segment.ms"]["config_source"] == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
            assert configs["retention.ms"]["config_source"] == ConfigSource.DEFAULT_CONFIG.value
        described = metadata_topic(conn, topic)
        assert len(described["partitions"]) == 2
        if version >= 7:
            assert created["topic_id"] == described["topic_id"] != bytes(16)


def test_create_topics_refuses_a_name_given_twice(kafka_server) -> None:
    topic = unique_topic()
    entry = {"name": topic, "num_partitions": 1, "replication_factor": 1}
    with KafkaSocket(kafka_server.kafka_port) as conn:
        out = conn.request(apis.CREATE_TOPICS, 7, {"topics": [entry, entry]})
        assert [(t["name"], t["error_code"]) for t in out["topics"]] == [
            (topic, KafkaError.INVALID_REQUEST)
        ]
        assert metadata_topic(conn, topic)["error_code"] == KafkaError.UNKNOWN_TOPIC_OR_PART


@pytest.mark.parametrize("version", versions(apis.DELETE_TOPICS))
def test_delete_topics_every_version(kafka_server, version: int) -> None:
    kept, gone, missing = unique_topic(), unique_topic(), unique_topic("missing")
    with KafkaSocket(kafka_server.kafka_port) as conn:
        for topic in (kept, gone):
            entry = {"name": topic, "num_partitions": 1, "replication_factor": 1}
            assert conn.request(apis.CREATE_TOPICS, 7, {"topics": [entry]})["topics"][0][
                "error_code"
            ] == 0  # fmt: skip
        gone_id = metadata_topic(conn, gone)["topic_id"]
        if version >= 6:
            body = {
                "topics": [
                    {"name": None, "topic_id": gone_id},
                    {"name": missing, "topic_id": bytes(16)},
                    {"name": None, "topic_id": uuid.uuid4().bytes},
                ]
            }
        else:
            body = {"topic_names": [gone, missing]}
        out = conn.request(apis.DELETE_TOPICS, version, {**body, "timeout_ms": 5000})
        results = [(r["name"], r["error_code"]) for r in out["responses"]]
        expected = [(gone, 0), (missing, KafkaError.UNKNOWN_TOPIC_OR_PART)]
        if version >= 6:
            expected.append((None, KafkaError.UNKNOWN_TOPIC_ID))
            assert out["responses"][0]["topic_id"] == gone_id
        assert results == expected
        if version >= 5:
            assert "missing" in out["responses"][1]["error_message"]
        assert metadata_topic(conn, gone)["error_code"] == KafkaError.UNKNOWN_TOPIC_OR_PART
        assert metadata_topic(conn, kept)["error_code"] == 0


@pytest.mark.parametrize("version", versions(apis.CREATE_PARTITIONS))
def test_create_partitions_every_version(kafka_server, version: int) -> None:
    topic = unique_topic()
    with KafkaSocket(kafka_server.kafka_port) as conn:
        entry = {"name": topic, "num_partitions": 1, "replication_factor": 1}
        conn.request(apis.CREATE_TOPICS, 7, {"topics": [entry]})
        out = conn.request(
            apis.CREATE_PARTITIONS,
            version,
            {
                "topics": [
                    {"name": topic, "count": 3, "assignments": None},
                    {"name": unique_topic("missing"), "count": 3, "assignments": None},
                ],
                "timeout_ms": 5000,
            },
        )
        codes = [r["error_code"] for r in out["results"]]
        assert codes == [0, KafkaError.UNKNOWN_TOPIC_OR_PART]
        assert len(metadata_topic(conn, topic)["partitions"]) == 3
        manual = {"name": topic, "count": 4, "assignments": [{"broker_ids": [1]}]}
        out = conn.request(apis.CREATE_PARTITIONS, version, {"topics": [manual]})
        assert out["results"][0]["error_code"] == KafkaError.INVALID_REQUEST
        assert len(metadata_topic(conn, topic)["partitions"]) == 3


@pytest.mark.parametrize("version", versions(apis.DESCRIBE_CONFIGS))
def test_describe_configs_every_version(kafka_server, version: int) -> None:
    topic = unique_topic()
    with KafkaSocket(kafka_server.kafka_port) as conn:
        entry = {
            "name": topic,
            "num_partitions": 1,
            "replication_factor": 1,
            "configs": [{"name": "retention.bytes", "value": "123456"}],
        }
        conn.request(apis.CREATE_TOPICS, 7, {"topics": [entry]})
        out = conn.request(
            apis.DESCRIBE_CONFIGS,
            version,
            {
                "resources": [
                    {"resource_type": 2, "resource_name": topic, "configuration_keys": None},
                    {
                        "resource_type": 2,
                        "resource_name": topic,
                        "configuration_keys": ["retention.bytes", "unknown.key"],
                    },
                    {"resource_type": 4, "resource_name": "", "configuration_keys": None},
                    {"resource_type": 8, "resource_name": "0", "configuration_keys": None},
                ],
                "include_synonyms": True,
                "include_documentation": True,
            },
        )
        everything, filtered, broker, logger = out["results"]
        assert len(everything["configs"]) == 7
        (only,) = filtered["configs"]
        assert (only["name"], only["value"], only["read_only"]) == (
            "retention.bytes",
            "123456",
            False,
        )
        assert broker["error_code"] == 0 and broker["configs"]
        assert logger["error_code"] == KafkaError.INVALID_REQUEST
        if version == 0:
            assert only["is_default"] is False
        else:
            assert only["config_source"] == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
            assert [s["name"] for s in only["synonyms"]] == [
                "retention.bytes",
                "log.retention.bytes",
            ]
        if version >= 3:
            assert only["config_type"] == 5  # LONG
            assert only["documentation"]


@pytest.mark.parametrize("version", versions(apis.ALTER_CONFIGS))
def test_alter_configs_every_version(kafka_server, version: int) -> None:
    topic = unique_topic()
    with KafkaSocket(kafka_server.kafka_port) as conn:
        entry = {"name": topic, "num_partitions": 1, "replication_factor": 1}
        conn.request(apis.CREATE_TOPICS, 7, {"topics": [entry]})

        def alter(configs: list[dict], validate_only: bool = False) -> dict:
            body = {
                "resources": [{"resource_type": 2, "resource_name": topic, "configs": configs}],
                "validate_only": validate_only,
            }
            (result,) = conn.request(apis.ALTER_CONFIGS, version, body)["responses"]
            assert result["resource_name"] == topic
            return result

        assert (
            alter([{"name": "retention.ms", "value": "1000"}], validate_only=True)["error_code"]
            == 0
        )
        assert value_of(conn, topic, "retention.ms") == str(7 * 24 * 3600 * 1000)
        assert alter([{"name": "retention.ms", "value": "1000"}])["error_code"] == 0
        assert value_of(conn, topic, "retention.ms") == "1000"
        twice = alter([{"name": "segment.ms", "value": "1"}, {"name": "segment.ms", "value": "2"}])
        assert twice["error_code"] == KafkaError.INVALID_REQUEST
        assert value_of(conn, topic, "retention.ms") == "1000"


def value_of(conn: KafkaSocket, topic: str, key: str) -> str:
    out = conn.request(
        apis.DESCRIBE_CONFIGS,
        4,
        {"resources": [{"resource_type": 2, "resource_name": topic, "configuration_keys": [key]}]},
    )
    return out["results"][0]["configs"][0]["value"]


@pytest.mark.parametrize("version", versions(apis.INCREMENTAL_ALTER_CONFIGS))
def test_incremental_alter_configs_every_version(kafka_server, version: int) -> None:
    topic = unique_topic()
    with KafkaSocket(kafka_server.kafka_port) as conn:
        entry = {"name": topic, "num_partitions": 1, "replication_factor": 1}
        conn.request(apis.CREATE_TOPICS, 7, {"topics": [entry]})
        out = conn.request(
            apis.INCREMENTAL_ALTER_CONFIGS,
            version,
            {
                "resources": [
                    {
                        "resource_type": 2,
                        "resource_name": topic,
                        "configs": [
                            {"name": "segment.bytes", "config_operation": 0, "value": "4096"}
                        ],
                    },
                    {
                        "resource_type": 2,
                        "resource_name": unique_topic("missing"),
                        "configs": [
                            {"name": "segment.bytes", "config_operation": 0, "value": "4096"}
                        ],
                    },
                    {
                        "resource_type": 2,
                        "resource_name": topic,
                        "configs": [{"name": "segment.ms", "config_operation": 9, "value": "1"}],
                    },
                ],
            },
        )
        codes = [r["error_code"] for r in out["responses"]]
        assert codes == [0, KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.INVALID_REQUEST]
        assert value_of(conn, topic, "segment.bytes") == "4096"
