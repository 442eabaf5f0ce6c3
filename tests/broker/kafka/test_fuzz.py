"""Malformed Kafka frames: an error response or a closed connection, never a crash or a hang.

The issue's requirement: fuzz the frame and request decoders with at least 100,000 malformed
frames; each gets an error response or a closed connection; the server never crashes, never
allocates a declared-but-absent huge size, and other clients keep working during the run.

In process, 100,000 mutated frames of every served API and version go through the listener's
decode path (``fuzzing.decode_request``): each decodes or raises ``DecodeError``. Over the wire,
frames that do not decode are sent to a real server on many connections while real clients
produce and read metadata; afterwards the server is alive and serves normally.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import socket
import struct
import threading
import time
import tracemalloc
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient
from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.protocol.codec import DecodeError, codec, uvarint

from tests.broker.kafka import fuzzing
from tests.broker.kafka.conftest import KafkaSocket, create_topic, unique_topic
from tests.conftest import ServerProcess

UNSUPPORTED_VERSION = 35
_SIZE = struct.Struct(">i")
IN_PROCESS_FRAMES = 100_000
WIRE_FRAMES = 40_000
WIRE_CONCURRENCY = 24
PROBE_TIMEOUT_S = 15.0
MAX_FAILURES = 10


# ---------------------------------------------------------------------- in process
def test_100k_malformed_frames_decode_or_raise_decode_error():
    bases = fuzzing.base_frames(random.Random(1))
    outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
    for name, frame in fuzzing.malformed_frames(20_240_601, IN_PROCESS_FRAMES, bases):
        try:
            fuzzing.decode_request(frame)
        except fuzzing.Refused:
            outcomes[name, "refused"] += 1
        except DecodeError:
            outcomes[name, "rejected"] += 1
        else:
            outcomes[name, "decoded"] += 1
        # Any other exception escapes and fails the test with the frame's mutation in the trace.
    assert sum(outcomes.values()) == IN_PROCESS_FRAMES
    rejected = sum(n for (_, outcome), n in outcomes.items() if outcome == "rejected")
    assert rejected > IN_PROCESS_FRAMES // 2, outcomes
    # Every mutation kind reached the body decoder and was caught there at least once.
    for name, _, _ in fuzzing.MUTATIONS:
        if name != "random-frame":
            assert outcomes[name, "rejected"] > 0, (name, outcomes)


def test_declared_but_absent_sizes_are_never_allocated_in_process():
    """Inflated lengths and counts cost memory in proportion to the frame, not to the claim."""
    rng = random.Random(7)
    bases = fuzzing.base_frames(rng, per_version=2)
    frames = [fuzzing._inflate(rng.choice(bases), rng) for _ in range(3000)]
    frames += HUGE_INSIDE.values()
    for frame in frames:  # compile every codec first so only decoding is measured
        _decode_quietly(frame)
    tracemalloc.start()
    try:
        worst = 0
        for frame in frames:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            _decode_quietly(frame)
            worst = max(worst, tracemalloc.get_traced_memory()[1] - before - 100 * len(frame))
    finally:
        tracemalloc.stop()
    assert worst < 64 * 1024


@pytest.mark.timeout(60)
def test_a_frame_repeating_a_known_tag_millions_of_times_decodes_in_linear_time():
    """Each known tagged field used to be decoded from a copy of the frame up to its end."""
    count = 3_000_000
    flood = uvarint(count) + b"\x00\x01\x00" * count  # tag 0 (cluster_id), 1 byte, null
    # The body's last byte is its empty tag section; the flood replaces it.
    frame = fuzzing.request_frame(apis.FETCH, 12, {"topics": []})[:-1] + flood
    # A quadratic decoder copies about 13 TB here; pytest-timeout ends that as a hang.
    _, request = fuzzing.decode_request(frame)
    assert request["cluster_id"] is None


def _decode_quietly(frame: bytes) -> None:
    with contextlib.suppress(fuzzing.Refused, DecodeError):
        fuzzing.decode_request(frame)


# ------------------------------------------------------------------------ over the wire
def _framed(payload: bytes) -> bytes:
    return _SIZE.pack(len(payload)) + payload


API_VERSIONS_V3 = fuzzing.request_frame(
    apis.API_VERSIONS, 3, {"client_software_name": "fuzz", "client_software_version": "1"}, 7
)
METADATA_V1 = fuzzing.request_frame(apis.METADATA, 1, {"topics": []}, 8)
TRAILER_CORRELATION = 8


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = _SIZE.unpack(await reader.readexactly(4))
    return await reader.readexactly(size)


async def _probe(port: int, frame: bytes, lead: bool) -> str:
    """Sends one malformed frame (after a valid request when ``lead``) and a valid trailer.

    Returns ``closed`` when the server closed without answering the malformed frame or the
    trailer, ``answered`` when an ApiVersions fallback answered both, else a failure text.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if lead:
            writer.write(_framed(API_VERSIONS_V3))
            answer = await _read_frame(reader)
            if _SIZE.unpack_from(answer)[0] != 7:
                return "lead request answered with the wrong correlation id"
        writer.write(_framed(frame) + _framed(METADATA_V1))
        if fuzzing.is_api_versions_fallback(frame):
            answer = await _read_frame(reader)
            (correlation,) = _SIZE.unpack_from(answer)
            response = codec("ApiVersionsResponse", 0).decode(answer, 4)
            if correlation != struct.unpack_from(">i", frame, 4)[0]:
                return "fallback answered with the wrong correlation id"
            if response["error_code"] != UNSUPPORTED_VERSION or not response["api_keys"]:
                return f"fallback answer {response}"
            trailer = await _read_frame(reader)
            if _SIZE.unpack_from(trailer)[0] != TRAILER_CORRELATION:
                return "trailer after the fallback was not answered"
            return "answered"
        try:
            extra = await reader.read()
        except ConnectionResetError:
            return "closed"  # the server closed with our trailer unread: a reset, not a FIN
        if extra:
            return f"answered a malformed frame with {extra[:40]!r}"
        return "closed"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def wire_frames(count: int) -> list[bytes]:
    """Malformed frames the listener must refuse: each fails its decode path."""
    bases = fuzzing.base_frames(random.Random(3))
    out: list[bytes] = []
    for _, frame in fuzzing.malformed_frames(99, count * 3, bases):
        try:
            fuzzing.decode_request(frame)
        except (fuzzing.Refused, DecodeError):
            out.append(frame)
            if len(out) == count:
                return out
    raise AssertionError("the mutators made too few malformed frames")


async def _fuzz(
    port: int, frames: list[bytes], failures: list[tuple[str, bytes]]
) -> collections.Counter[str]:
    """Sends every frame on its own connection, ``WIRE_CONCURRENCY`` at a time."""
    results: collections.Counter[str] = collections.Counter()
    queue = iter(enumerate(frames))

    async def worker() -> None:
        for i, frame in queue:
            if len(failures) >= MAX_FAILURES:
                return  # broken already: do not wait out a timeout per remaining frame
            try:
                outcome = await asyncio.wait_for(_probe(port, frame, i % 5 == 0), PROBE_TIMEOUT_S)
            except TimeoutError:
                outcome = "hang"
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                outcome = f"{type(exc).__name__} where a response was due"
            results[outcome] += 1
            if outcome not in ("closed", "answered"):
                failures.append((outcome, frame))

    await asyncio.gather(*(worker() for _ in range(WIRE_CONCURRENCY)))
    return results


class RealClients(threading.Thread):
    """Produces and reads metadata with confluent-kafka and kafka-python until stopped."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap = bootstrap
        self.topic = topic
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.rounds = 0
        self.delivered = 0

    def run(self) -> None:
        config = {"bootstrap.servers": self.bootstrap, "error_cb": self._error}
        producer = Producer({**config, "acks": "all", "linger.ms": 2})
        admin = AdminClient(config)
        legacy = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=15_000)
        try:
            while not self.stop.is_set():
                self._round(producer, admin, legacy)
        except Exception as exc:  # any failure of a real client fails the test
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            legacy.close()

    def _round(self, producer: Producer, admin: AdminClient, legacy: KafkaAdminClient) -> None:
        listed = admin.list_topics(timeout=15)
        if self.topic not in listed.topics:
            self.errors.append(f"{self.topic} missing from metadata: {sorted(listed.topics)}")
        failed: list[Any] = []
        delivered: list[int] = []

        def on_delivery(err: Any, msg: Any) -> None:
            if err:
                failed.append(err)
            else:
                delivered.append(msg.offset())

        for i in range(20):
            producer.produce(self.topic, b"v%d" % i, on_delivery=on_delivery)
        producer.flush(15)
        if failed or len(delivered) != 20:
            self.errors.append(f"{len(delivered)} of 20 delivered; failures: {failed}")
        self.delivered += len(delivered)
        if self.topic not in legacy.list_topics():
            self.errors.append(f"kafka-python does not list {self.topic}")
        self.rounds += 1

    def _error(self, err: Any) -> None:
        self.errors.append(f"client error: {err}")


def vm_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def server_pid(server: ServerProcess) -> int:
    assert server.proc is not None
    return server.proc.pid


def assert_serves_normally(server: ServerProcess) -> None:
    assert server.proc is not None and server.proc.poll() is None, server.output()[-4000:]
    with KafkaSocket(server.kafka_port) as sock:
        versions = sock.request(apis.API_VERSIONS, 3, {})
        assert versions["error_code"] == 0
        assert {entry["api_key"] for entry in versions["api_keys"]} >= {apis.METADATA}
    listed = AdminClient({"bootstrap.servers": f"127.0.0.1:{server.kafka_port}"}).list_topics(
        timeout=15
    )
    assert listed.brokers


@pytest.mark.slow
def test_wire_fuzz_closes_each_malformed_connection_while_real_clients_keep_working(
    kafka_server: ServerProcess, bootstrap: str
):
    topic = unique_topic("fuzz")
    create_topic(kafka_server, topic, partitions=2)
    frames = wire_frames(WIRE_FRAMES)
    fallbacks = sum(fuzzing.is_api_versions_fallback(frame) for frame in frames)
    failures: list[tuple[str, bytes]] = []
    clients = RealClients(bootstrap, topic)
    clients.start()
    try:
        results = asyncio.run(_fuzz(kafka_server.kafka_port, frames, failures))
    finally:
        clients.stop.set()
        clients.join(60)
    assert not clients.is_alive()
    assert results["closed"] + results["answered"] == WIRE_FRAMES, (results, failures)
    assert results["answered"] == fallbacks
    assert clients.errors == []
    assert clients.rounds > 0 and clients.delivered == 20 * clients.rounds
    assert_serves_normally(kafka_server)
    # No malformed frame reached a handler or escaped the decoder.
    assert "Traceback" not in kafka_server.output()


# ------------------------------------------------------------------- declared sizes
def _raw(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _closed(sock: socket.socket, wait: float = 10.0) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_frame_declaring_two_billion_bytes_is_refused_without_allocating(
    kafka_server: ServerProcess,
):
    pid = server_pid(kafka_server)
    before = vm_rss_kb(pid)
    socks = []
    for _ in range(5):
        sock = _raw(kafka_server.kafka_port)
        sock.sendall(_SIZE.pack(2_000_000_000) + API_VERSIONS_V3[:12])
        socks.append(sock)
    for sock in socks:
        assert _closed(sock)
        sock.close()
    assert vm_rss_kb(pid) - before < 50 * 1024
    assert_serves_normally(kafka_server)


def test_a_90mb_frame_with_a_few_bytes_holds_only_what_arrived(kafka_server: ServerProcess):
    """Under the 100 MB limit the listener waits for the bytes; memory follows what arrives."""
    pid = server_pid(kafka_server)
    before = vm_rss_kb(pid)
    idle = [_raw(kafka_server.kafka_port) for _ in range(5)]
    for sock in idle:
        sock.sendall(_SIZE.pack(90 * 1024 * 1024) + API_VERSIONS_V3 + b"\0" * 100)
    time.sleep(0.5)
    # Five idle connections claiming 450 MB between them: the server holds a few bytes each
    # and keeps serving everyone else.
    assert_serves_normally(kafka_server)
    assert vm_rss_kb(pid) - before < 50 * 1024
    for sock in idle:
        sock.close()
    assert_serves_normally(kafka_server)


HUGE_INSIDE = {
    # Metadata v1: the topics array claims 2**31-1 elements; four bytes follow.
    "array": fuzzing.request_header(apis.METADATA, 1) + _SIZE.pack(2**31 - 1) + b"abcd",
    # Metadata v9 (flexible): the compact topics count claims 2**31-1 elements.
    "compact array": fuzzing.request_header(apis.METADATA, 9) + uvarint(2**31) + b"\0" * 4,
    # SaslAuthenticate v0: the auth bytes claim 2**31-1 bytes; three follow.
    "bytes": fuzzing.request_header(apis.SASL_AUTHENTICATE, 0) + _SIZE.pack(2**31 - 1) + b"xyz",
    # DeleteTopics v0: one topic name claiming 32767 bytes; one follows.
    "string": fuzzing.request_header(apis.DELETE_TOPICS, 0)
    + _SIZE.pack(1)
    + struct.pack(">h", 2**15 - 1)
    + b"t",
    # Flexible DeleteTopics v4: a compact string claiming 2**31-1 bytes.
    "compact string": fuzzing.request_header(apis.DELETE_TOPICS, 4)
    + uvarint(2)
    + uvarint(2**31)
    + b"t",
    # The request header's client id claims 32767 bytes; one follows.
    "client id": struct.pack(">hhih", apis.METADATA, 1, 5, 2**15 - 1) + b"x",
}


@pytest.mark.parametrize("where", list(HUGE_INSIDE))
def test_huge_counts_and_lengths_inside_a_small_frame_close_the_connection(
    kafka_server: ServerProcess, where: str
):
    frame = HUGE_INSIDE[where]
    with pytest.raises(DecodeError):
        fuzzing.decode_request(frame)
    pid = server_pid(kafka_server)
    before = vm_rss_kb(pid)
    for _ in range(20):
        with _raw(kafka_server.kafka_port) as sock:
            sock.sendall(_framed(frame))
            assert _closed(sock)
    assert vm_rss_kb(pid) - before < 50 * 1024
    assert_serves_normally(kafka_server)


# -------------------------------------------------------------- unknown APIs, versions
@pytest.mark.parametrize(
    ("api_key", "version"),
    [(67, 0), (-1, 0), (24, 0), (apis.METADATA, 99), (apis.METADATA, -1), (apis.FETCH, 3)],
)
def test_unknown_api_key_or_unsupported_version_closes_the_connection(
    kafka_server: ServerProcess, api_key: int, version: int
):
    with KafkaSocket(kafka_server.kafka_port) as sock:
        sock.send_raw(struct.pack(">hhih", api_key, version, 1, 4) + b"test" + b"\0" * 8)
        assert sock.is_closed(10)


def test_api_versions_99_is_answered_in_v0_with_unsupported_version_and_the_api_list(
    kafka_server: ServerProcess,
):
    with KafkaSocket(kafka_server.kafka_port) as sock:
        sock.send_raw(struct.pack(">hhih", apis.API_VERSIONS, 99, 42, 4) + b"test" + b"\x7f" * 9)
        frame = sock.receive_frame()
        assert _SIZE.unpack_from(frame)[0] == 42
        # v0 has no header tag section and no throttle time: the body decodes exactly.
        answer = codec("ApiVersionsResponse", 0).decode(frame, 4)
        assert answer["error_code"] == UNSUPPORTED_VERSION
        ranges = {e["api_key"]: (e["min_version"], e["max_version"]) for e in answer["api_keys"]}
        assert ranges[apis.API_VERSIONS] == apis.SUPPORTED[apis.API_VERSIONS]
        assert ranges[apis.METADATA] == apis.SUPPORTED[apis.METADATA]
        # The connection stays open, so the client retries in a version we serve.
        assert sock.request(apis.API_VERSIONS, 3, {})["error_code"] == 0
