"""A real `streamhouse serve` child process for benchmarks, and readings of its resource use."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple


class BenchServer(NamedTuple):
    proc: subprocess.Popen[bytes]
    grpc_address: str
    kafka_bootstrap: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(root: Path, *flags: str) -> BenchServer:
    """Starts the server with embedded defaults under ``root`` and waits until it is ready."""
    import httpx

    http, grpc_port, kafka_port = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "streamhouse.workbench.cli", "serve",
            "--data-dir", str(root / "data"), "--http-port", str(http),
            "--grpc-port", str(grpc_port), "--kafka-port", str(kafka_port),
            "--log-level", "warning", *flags,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{http}/ready", timeout=1).status_code == 200:
                return BenchServer(proc, f"127.0.0.1:{grpc_port}", f"127.0.0.1:{kafka_port}")
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready")


def server_rss_mb(proc: subprocess.Popen[bytes]) -> float:
    """Peak resident memory of the server process (VmHWM)."""
    with open(f"/proc/{proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
