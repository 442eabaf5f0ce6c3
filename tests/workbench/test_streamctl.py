"""`streamctl` as people and scripts run it: a real process against a real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from streamhouse.broker.records.partitioner import partition_for_key

COMMAND = [sys.executable, "-m", "streamhouse.workbench.streamctl"]


def streamctl(
    address: str, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs streamctl with STREAMHOUSE_SERVER set to ``address`` (a flag may override it)."""
    proc = subprocess.run(
        [*COMMAND, *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        env={**os.environ, "STREAMHOUSE_SERVER": address, "COLUMNS": "200", **(env or {})},
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}{result.stdout}"
    return result.stdout


def as_json(result: subprocess.CompletedProcess[str]):
    return json.loads(ok(result))


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in ok(result).splitlines()]


def failed(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    assert result.returncode == code, f"exit {result.returncode}: {result.stderr}{result.stdout}"
    for word in words:
        assert word in result.stderr, result.stderr
    return result.stderr


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_topic_lifecycle(server) -> None:
    at = server.grpc_address
    created = as_json(
        streamctl(at, "-o", "json", "topic", "create", "orders", "-p", "3",
                  "--config", "retention.ms=60000")
    )  # fmt: skip
    assert (created["name"], created["partitions"]) == ("orders", 3)
    assert "created topic 't2' (1 partition)" in ok(streamctl(at, "topic", "create", "t2"))
    failed(streamctl(at, "topic", "create", "orders"), 1, "error:", "orders", "exists")
    ok(streamctl(at, "topic", "create", "orders", "--if-not-exists"))

    listed = as_json(streamctl(at, "topic", "list", "--output", "json"))
    assert [(t["name"], t["partitions"]) for t in listed["topics"]] == [("orders", 3), ("t2", 1)]
    table = streamctl(at, "topic", "list")
    assert "orders" in ok(table) and "t2" in table.stdout and table.stderr == ""

    described = as_json(streamctl(at, "topic", "describe", "orders", "-o", "json"))
    assert described["topic"]["configs"]["retention.ms"] == "60000"
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2]
    assert all(p["next_offset"] == 0 for p in described["partitions"])

    updated = as_json(
        streamctl(at, "-o", "json", "topic", "update", "orders",
                  "--set", "segment.bytes=2097152", "--reset", "retention.ms")
    )  # fmt: skip
    assert updated["configs"]["segment.bytes"] == "2097152"
    assert updated["configs"]["retention.ms"] != "60000"
    grown = as_json(
        streamctl(at, "-o", "json", "topic", "add-partitions", "orders", "--total", "5")
    )
    assert grown["partitions"] == 5

    failed(streamctl(at, "topic", "delete", "orders", stdin=b"n\n"), 1, "was not deleted")
    ok(streamctl(at, "topic", "describe", "orders"))
    assert "deleted topic 'orders'" in ok(streamctl(at, "topic", "delete", "orders", "--yes"))
    failed(streamctl(at, "topic", "describe", "orders"), 1, "error: unknown topic 'orders'")


def test_produce_file_with_keys_then_consume_as_json(server, tmp_path: Path) -> None:
    at = server.grpc_address
    ok(streamctl(at, "topic", "create", "events", "--partitions", "3"))
    lines = [b"alice|1", b"bob|2", b"alice|3", b"no separator", b"", b"carol|x|y",
             "zoë|✓".encode(), b"bin|\xff\xfe\r", b"last|no newline"]  # fmt: skip
    source = tmp_path / "events.txt"
    source.write_bytes(b"\n".join(lines))
    result = streamctl(at, "produce", "events", "--file", str(source), "--key-sep", "|",
                       "--header", "origin=file", "--acks", "all")  # fmt: skip
    assert "acknowledged 9 records" in ok(result)

    records = json_lines(
        streamctl(at, "consume", "events", "--from-beginning", "--max", "9", "--format", "json")
    )
    assert len(records) == 9
    expected = []
    for line in lines:
        key, sep, value = line.partition(b"|")
        expected.append((key, value) if sep else (None, line))

    def raw(record: dict, field: str) -> bytes | None:
        import base64

        text = record[field]
        if text is None:
            return None
        if record.get(f"{field}_encoding") == "base64":
            return base64.b64decode(text)
        return text.encode()

    got = [(raw(r, "key"), raw(r, "value")) for r in records]
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    for record, (key, _) in zip(records, got, strict=True):
        assert record["headers"] == [{"key": "origin", "value": "file"}]
        if key is not None:
            assert record["partition"] == partition_for_key(key, 3)
        assert isinstance(record["timestamp"], int) and record["timestamp"] > 1_600_000_000_000
    binary = next(r for r in records if r["key"] == "bin")
    assert binary["value_encoding"] == "base64" and "key_encoding" not in binary
    alice = sorted((r["offset"], r["value"]) for r in records if r["key"] == "alice")
    assert [value for _, value in alice] == ["1", "3"]

    # stdin, one partition; then --exit-at-end stops at the end seen at start
    piped = b"".join(b"line-%d\n" % i for i in range(1000))
    assert "acknowledged 1000 records" in ok(
        streamctl(at, "produce", "events", "--partition", "1", stdin=piped)
    )
    values = ok(
        streamctl(at, "consume", "events", "--partition", "1", "--from-beginning",
                  "--exit-at-end", "--format", "raw")
    ).splitlines()  # fmt: skip
    assert values[-1000:] == [f"line-{i}" for i in range(1000)]
    assert len(values) == 1000 + sum(1 for r in records if r["partition"] == 1)
    tail = json_lines(
        streamctl(at, "consume", "events", "-p", "1", "--offset", "998", "--exit-at-end")
    )
    assert [r["value"] for r in tail][-2:] == ["line-998", "line-999"]
    assert all(r["offset"] >= 998 for r in tail)
    # nothing new: --exit-at-end without --from-beginning ends at once with no output
    assert ok(streamctl(at, "consume", "events", "--exit-at-end")) == ""


def test_group_consume_describe_and_reset_offsets(server) -> None:
    at = server.grpc_address
    ok(streamctl(at, "topic", "create", "clicks", "-p", "2"))
    data = b"".join(b"k%d:v%d\n" % (i, i) for i in range(50))
    ok(streamctl(at, "produce", "clicks", "--key-sep", ":", stdin=data))
    consumed = json_lines(
        streamctl(at, "consume", "clicks", "--group", "app", "--from-beginning", "--exit-at-end")
    )
    assert sorted(r["value"] for r in consumed) == sorted(f"v{i}" for i in range(50))

    listed = as_json(streamctl(at, "-o", "json", "group", "list"))
    assert [(g["group"], g["members"]) for g in listed["groups"]] == [("app", 0)]
    described = as_json(streamctl(at, "-o", "json", "group", "describe", "app"))
    assert described["total_lag"] == 0
    ends = {o["partition"]: o["end_offset"] for o in described["offsets"]}
    assert sum(ends.values()) == 50
    assert all(o["committed_offset"] == o["end_offset"] for o in described["offsets"])
    assert "total lag 0" in ok(streamctl(at, "group", "describe", "app"))

    dry = as_json(
        streamctl(at, "-o", "json", "group", "reset-offsets", "app", "--topic", "clicks",
                  "--to", "earliest", "--dry-run")
    )  # fmt: skip
    assert dry["dry_run"] and [o["offset"] for o in dry["offsets"]] == [0, 0]
    still = as_json(streamctl(at, "-o", "json", "group", "describe", "app"))
    assert still["total_lag"] == 0, "a dry run commits nothing"

    reset = as_json(
        streamctl(at, "-o", "json", "group", "reset-offsets", "app", "--topic", "clicks",
                  "--to", "timestamp", "--value", "2001-09-09T01:46:40Z", "--partition", "0")
    )  # fmt: skip
    assert reset == {
        "group": "app",
        "dry_run": False,
        "offsets": [{"topic": "clicks", "partition": 0, "offset": 0}],
    }
    after = as_json(streamctl(at, "-o", "json", "group", "describe", "app"))
    assert after["total_lag"] == ends[0]
    again = json_lines(streamctl(at, "consume", "clicks", "-g", "app", "--exit-at-end"))
    assert len(again) == ends[0] and {r["partition"] for r in again} == {0}

    assert "deleted group 'app'" in ok(streamctl(at, "group", "delete", "app"))
    failed(streamctl(at, "group", "describe", "app"), 1, "error: unknown group 'app'")


def test_ctrl_c_stops_a_following_group_consumer_and_commits(server) -> None:
    at = server.grpc_address
    ok(streamctl(at, "topic", "create", "feed"))
    ok(streamctl(at, "produce", "feed", stdin=b"a\nb\nc\n"))
    env = {**os.environ, "STREAMHOUSE_SERVER": at}
    follower = subprocess.Popen(
        [*COMMAND, "consume", "feed", "-g", "tail", "--from-beginning", "--format", "raw"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert follower.stdout is not None
        seen = [follower.stdout.readline() for _ in range(3)]
        assert seen == [b"a\n", b"b\n", b"c\n"]
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=30) == 0, follower.stderr.read() if follower.stderr else ""
    finally:
        follower.kill()
    described = as_json(streamctl(at, "-o", "json", "group", "describe", "tail"))
    assert [o["committed_offset"] for o in described["offsets"]] == [3]
    assert described["total_lag"] == 0


def test_failures_have_one_line_errors_and_exit_codes(server) -> None:
    at = server.grpc_address
    failed(streamctl(at, "topic", "describe", "nope"), 1, "error: unknown topic 'nope'")
    failed(streamctl(at, "consume", "nope", "--exit-at-end"), 1, "unknown topic 'nope'")
    stderr = failed(streamctl(at, "produce", "nope", stdin=b"x\ny\n"), 1, "unknown topic 'nope'")
    assert "2 of 2 records were not acknowledged" in stderr
    failed(streamctl(at, "group", "reset-offsets", "g", "--topic", "nope", "--to", "latest"), 1)
    ok(streamctl(at, "topic", "create", "small", "-p", "2"))
    failed(streamctl(at, "consume", "small", "-p", "5", "--exit-at-end"), 1, "partitions 0..1")
    failed(streamctl(at, "topic", "create", "bad", "--config", "retention.ms=soon"), 1, "error:")
    failed(streamctl(at, "topic", "add-partitions", "small", "--total", "1"), 1, "error:")


@pytest.mark.parametrize(
    "args",
    [
        ["topic", "list", "--bogus"],
        ["topic", "create"],
        ["topic", "create", "t", "--partitions", "0"],
        ["topic", "create", "t", "--config", "no-equals-sign"],
        ["topic", "update", "t"],
        ["--output", "yaml", "topic", "list"],
        ["group", "reset-offsets", "g", "--topic", "t", "--to", "offset"],
        ["group", "reset-offsets", "g", "--topic", "t", "--to", "sometime"],
        ["group", "reset-offsets", "g", "--topic", "t", "--to", "timestamp", "--value", "noon"],
        ["consume", "t", "--offset", "3", "--from-beginning"],
        ["consume", "t", "--group", "g", "--partition", "0"],
        ["consume", "t", "--format", "xml"],
        ["produce", "t", "--file", "/no/such/file"],
        ["produce", "t", "--header", "novalue"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2_before_contacting_the_server(args: list[str]) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    result = streamctl(nowhere, *args)
    assert result.returncode == 2, f"{args}: exit {result.returncode}: {result.stderr}"
    assert "cannot reach" not in result.stderr


def test_unreachable_server_exits_3_naming_the_address() -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    other = f"127.0.0.1:{free_port()}"
    calls = {
        nowhere: ("topic", "list"),
        other: ("--server", other, "group", "list"),  # the flag wins over the environment
        f"{nowhere} produce": ("produce", "t"),
        f"{nowhere} consume": ("consume", "t"),
    }
    with ThreadPoolExecutor(len(calls)) as pool:  # the client's retries wait; run them together
        outcomes = pool.map(lambda a: streamctl(nowhere, *a, stdin=b"x\n"), calls.values())
        results = dict(zip(calls, outcomes, strict=True))
    for label, result in results.items():
        address = label.split()[0]
        stderr = failed(result, 3, f"cannot reach StreamHouse at {address}")
        assert stderr.startswith("error: ")
    assert results[nowhere].stderr.count("\n") == 1
