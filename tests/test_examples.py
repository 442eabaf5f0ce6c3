"""The examples in examples/ run as documented."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_log_roundtrip_example_survives_a_restart(tmp_path: Path) -> None:
    script = str(EXAMPLES / "log_roundtrip.py")
    first = subprocess.run(
        [sys.executable, script, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    assert "appended at offset 0; high watermark 2" in first.stdout
    second = subprocess.run(
        [sys.executable, script, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr
    assert "appended at offset 2; high watermark 4" in second.stdout
    assert second.stdout.count("b'hello'") == 2


def run_example(name: str, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_produce_consume_example_reads_back_its_ten_records(server) -> None:
    for run in range(2):  # a second run reads back only its own records
        result = run_example("produce_consume.py", server.grpc_address)
        assert result.returncode == 0, result.stderr
        lines = [line for line in result.stdout.splitlines() if line.startswith("partition=")]
        assert len(lines) == 10
        assert sorted(line.split("value=")[1] for line in lines) == sorted(
            f"hello {i}" for i in range(10)
        )
        assert "consumed 10 records" in result.stdout
        if run == 1:
            assert all(int(line.split()[1].split("=")[1]) > 0 for line in lines)


def test_async_consumer_group_example_gets_every_order(server) -> None:
    result = run_example("async_consumer_group.py", env={"STREAMHOUSE_SERVER": server.grpc_address})
    assert result.returncode == 0, result.stderr
    assert "producer: sent 100 orders" in result.stdout
    assert "consumer: received 100 orders" in result.stdout
    assert "reading partitions [0, 1, 2, 3]" in result.stdout


def test_examples_fail_clearly_without_a_server() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    result = run_example("produce_consume.py", address)
    assert result.returncode != 0
    assert f"cannot reach StreamHouse at {address}" in result.stderr
