"""SASL/PLAIN on the Kafka listener, with real clients and raw frames.

One server runs with ``--kafka-sasl-users``; the module's plain server (conftest) shows what a
client configured for SASL is told by a listener without it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from streamhouse.broker.kafka import apis

from tests.broker.kafka.conftest import KafkaSocket, create_topic, unique_topic
from tests.conftest import ServerProcess

USER, PASSWORD = "alice", "s3cret"
TIMEOUT = 15


@pytest.fixture(scope="module")
def sasl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    users = json.dumps({USER: PASSWORD, "bob": "other"})
    server = ServerProcess(tmp_path_factory.mktemp("sasl") / "data", "--kafka-sasl-users", users)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def sasl_bootstrap(sasl_server: ServerProcess) -> str:
    return f"127.0.0.1:{sasl_server.kafka_port}"


def sasl_conf(bootstrap: str, password: str = PASSWORD, **extra: object) -> dict:
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": USER,
        "sasl.password": password,
        **extra,
    }


def first_error(conf: dict) -> KafkaError:
    """The first error librdkafka reports through ``error_cb`` while trying to connect."""
    errors: list[KafkaError] = []
    producer = Producer({**conf, "error_cb": errors.append, "log_level": 0})
    for _ in range(50):
        producer.poll(0.2)
        if errors:
            return errors[0]
    raise AssertionError("the client reported no error")


def authenticate(conn: KafkaSocket, token: bytes, version: int = 2) -> dict:
    handshake = conn.request(apis.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
    assert (handshake["error_code"], handshake["mechanisms"]) == (0, ["PLAIN"])
    return conn.request(apis.SASL_AUTHENTICATE, version, {"auth_bytes": token})


def metadata(conn: KafkaSocket) -> dict:
    return conn.request(apis.METADATA, 12, {"topics": None})


# ---------------------------------------------------------------------------- real clients
def test_confluent_kafka_with_the_right_password_works(sasl_bootstrap: str) -> None:
    topic = unique_topic()
    admin = AdminClient(sasl_conf(sasl_bootstrap))
    admin.create_topics([NewTopic(topic, 1)])[topic].result(TIMEOUT)
    assert topic in admin.list_topics(timeout=TIMEOUT).topics

    delivered: list = []
    producer = Producer(sasl_conf(sasl_bootstrap))
    producer.produce(topic, b"secret value", on_delivery=lambda err, msg: delivered.append(err))
    assert producer.flush(TIMEOUT) == 0
    assert delivered == [None]

    consumer = Consumer(sasl_conf(sasl_bootstrap, **{"group.id": unique_topic("g")}))
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        message = consumer.poll(TIMEOUT)
        assert message is not None and message.error() is None
        assert message.value() == b"secret value"
    finally:
        consumer.close()


def test_confluent_kafka_with_a_wrong_password_fails_to_authenticate(
    sasl_bootstrap: str,
) -> None:
    error = first_error(sasl_conf(sasl_bootstrap, password="wrong"))
    assert error.code() == KafkaError._AUTHENTICATION
    assert "invalid username or password" in error.str()


def test_unsupported_mechanism_names_the_enabled_one(sasl_bootstrap: str) -> None:
    conf = {**sasl_conf(sasl_bootstrap), "sasl.mechanisms": "SCRAM-SHA-256"}
    error = first_error(conf)
    assert error.code() == KafkaError._AUTHENTICATION
    assert "supported mechanisms: PLAIN" in error.str()


def test_a_sasl_client_against_a_listener_without_sasl_is_told(bootstrap: str) -> None:
    error = first_error(sasl_conf(bootstrap))
    assert error.code() == KafkaError._AUTHENTICATION
    assert "handshake failed" in error.str()


def test_a_client_without_sasl_gets_no_data(sasl_server: ServerProcess) -> None:
    create_topic(sasl_server, "hidden")
    with KafkaSocket(sasl_server.kafka_port) as conn:
        versions = conn.request(apis.API_VERSIONS, 3, {})
        assert versions["error_code"] == 0  # clients learn the SASL versions before auth
        conn.send(apis.METADATA, 12, {"topics": None})
        assert conn.is_closed()
    plain = AdminClient({"bootstrap.servers": f"127.0.0.1:{sasl_server.kafka_port}"})
    with pytest.raises(KafkaException) as refused:
        plain.list_topics(timeout=3)
    assert refused.value.args[0].code() == KafkaError._TRANSPORT


def test_kafka_python_with_sasl_plain(sasl_bootstrap: str) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError as KpError

    options = {
        "bootstrap_servers": sasl_bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": USER,
        "sasl_plain_password": PASSWORD,
        "request_timeout_ms": 10_000,
    }
    topic = unique_topic()
    admin = KafkaAdminClient(**options)
    try:
        admin.create_topics({topic: {"num_partitions": 1}})
        assert topic in admin.list_topics()
    finally:
        admin.close()
    producer = KafkaProducer(**options)
    try:
        metadata = producer.send(topic, b"from kafka-python").get(timeout=TIMEOUT)
        assert metadata.offset == 0
    finally:
        producer.close()
    refused = {**options, "sasl_plain_password": "wrong", "bootstrap_timeout_ms": 3000}
    with pytest.raises(KpError):
        KafkaAdminClient(**refused).list_topics()


def test_aiokafka_with_sasl_plain(sasl_bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaConnectionError

    async def topics(password: str) -> list[str]:
        client = AIOKafkaAdminClient(
            bootstrap_servers=sasl_bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_plain_username=USER,
            sasl_plain_password=password,
            request_timeout_ms=5000,
        )
        try:
            await client.start()
            return await client.list_topics()
        finally:
            await client.close()

    assert isinstance(asyncio.run(topics(PASSWORD)), list)
    with pytest.raises(KafkaConnectionError):
        asyncio.run(topics("wrong"))


def test_grpc_and_http_need_no_sasl(sasl_server: ServerProcess) -> None:
    topic = unique_topic()
    create_topic(sasl_server, topic, partitions=2)
    assert httpx.get(f"{sasl_server.http_url}/health", timeout=5).status_code == 200
    listed = httpx.get(f"{sasl_server.http_url}/api/v1/topics", timeout=5)
    assert topic in listed.text


# ------------------------------------------------------------------------------ raw frames
@pytest.mark.parametrize("version", [0, 1, 2])
def test_authenticate_every_version(sasl_server: ServerProcess, version: int) -> None:
    with KafkaSocket(sasl_server.kafka_port) as conn:
        out = authenticate(conn, f"\0{USER}\0{PASSWORD}".encode(), version)
        assert (out["error_code"], out["error_message"]) == (0, None)
        if version >= 1:
            assert out["session_lifetime_ms"] == 0
        assert metadata(conn)["brokers"]
        again = conn.request(apis.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
        assert again["error_code"] == KafkaError.ILLEGAL_SASL_STATE


@pytest.mark.parametrize(
    "token",
    [
        f"\0{USER}\0wrong".encode(),
        f"\0bob\0{PASSWORD}".encode(),  # another user's password
        f"\0nobody\0{PASSWORD}".encode(),
        f"{USER}\0{PASSWORD}".encode(),  # not three fields
        f"mallory\0{USER}\0{PASSWORD}".encode(),  # acting as someone else
        f"\0{USER}\0{PASSWORD}\0".encode(),
        b"\0\xff\xfe\0" + PASSWORD.encode(),
        b"",
    ],
)
def test_bad_credentials_leave_the_connection_unauthenticated(
    sasl_server: ServerProcess, token: bytes
) -> None:
    with KafkaSocket(sasl_server.kafka_port) as conn:
        out = authenticate(conn, token)
        assert out["error_code"] == KafkaError.SASL_AUTHENTICATION_FAILED
        assert "invalid username or password" in out["error_message"]
        # The handshake is spent: a second guess on this connection needs a new one.
        retry = conn.request(
            apis.SASL_AUTHENTICATE, 2, {"auth_bytes": f"\0{USER}\0{PASSWORD}".encode()}
        )
        assert retry["error_code"] == KafkaError.ILLEGAL_SASL_STATE
        conn.send(apis.METADATA, 12, {"topics": None})
        assert conn.is_closed()


def test_handshake_rules(sasl_server: ServerProcess) -> None:
    with KafkaSocket(sasl_server.kafka_port) as conn:
        versions = {k["api_key"]: k for k in conn.request(apis.API_VERSIONS, 3, {})["api_keys"]}
        handshake = versions[apis.SASL_HANDSHAKE]
        assert (handshake["min_version"], handshake["max_version"]) == (1, 1)
        early = conn.request(apis.SASL_AUTHENTICATE, 2, {"auth_bytes": b"\0alice\0s3cret"})
        assert early["error_code"] == KafkaError.ILLEGAL_SASL_STATE
        assert "before SaslHandshake" in early["error_message"]
        scram = conn.request(apis.SASL_HANDSHAKE, 1, {"mechanism": "SCRAM-SHA-512"})
        assert (scram["error_code"], scram["mechanisms"]) == (
            KafkaError.UNSUPPORTED_SASL_MECHANISM,
            ["PLAIN"],
        )
        out = authenticate(conn, f"\0{USER}\0{PASSWORD}".encode())
        assert out["error_code"] == 0


def test_handshake_v0_is_not_served(sasl_server: ServerProcess) -> None:
    with KafkaSocket(sasl_server.kafka_port) as conn:
        conn.send(apis.SASL_HANDSHAKE, 0, {"mechanism": "PLAIN"})
        assert conn.is_closed()


def test_sasl_requests_on_a_listener_without_sasl(kafka_server: ServerProcess) -> None:
    with KafkaSocket(kafka_server.kafka_port) as conn:
        handshake = conn.request(apis.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
        assert (handshake["error_code"], handshake["mechanisms"]) == (
            KafkaError.ILLEGAL_SASL_STATE,
            [],
        )
        out = conn.request(apis.SASL_AUTHENTICATE, 2, {"auth_bytes": b"\0alice\0s3cret"})
        assert out["error_code"] == KafkaError.ILLEGAL_SASL_STATE
        assert "not enabled" in out["error_message"]
        assert metadata(conn)["brokers"]  # nothing was needed in the first place
