"""`streamhouse serve` as a real process: readiness, metrics, graceful shutdown, bad settings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from streamhouse.workbench.settings import SettingsError, load_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "streamhouse.workbench.cli", "serve",
            "--data-dir", str(data_dir), "--http-port", str(port), *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def wait_ready(port: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not become ready")


def test_serve_becomes_ready_exposes_metrics_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = start_server(tmp_path / "data", port)
    try:
        wait_ready(port, proc)
        assert httpx.get(f"http://127.0.0.1:{port}/health").json() == {"status": "ok"}
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        for name in (
            "streamhouse_segment_uploads_total",
            "streamhouse_wal_size_bytes",
            "streamhouse_wal_fsync_seconds_count",
            "streamhouse_produce_latency_seconds",
            "streamhouse_segment_cache_bytes",
        ):
            assert name in metrics, name
        assert httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "stopped" in output
    assert (tmp_path / "data" / "metadata.db").exists()
    assert (tmp_path / "data" / "agent-id").read_text().strip().startswith("agent-")


def test_restart_keeps_the_agent_identity(tmp_path: Path) -> None:
    ids = []
    for _ in range(2):
        port = free_port()
        proc = start_server(tmp_path / "data", port)
        wait_ready(port, proc)
        os.kill(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output
        ids.append((tmp_path / "data" / "agent-id").read_text())
    assert ids[0] == ids[1]


def test_bad_setting_is_a_clear_error_and_exit_code_2(tmp_path: Path) -> None:
    proc = start_server(tmp_path / "data", 8080, "--wal-sync", "sometimes")
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "wal_sync" in output and "sometimes" in output


def test_settings_precedence_flags_over_env_over_toml(tmp_path: Path) -> None:
    config = tmp_path / "streamhouse.toml"
    config.write_text('http_port = 9000\ngrpc_port = 9001\nwal_sync = "never"\n')
    env = {"STREAMHOUSE_GRPC_PORT": "9002", "STREAMHOUSE_WAL_SYNC": "always"}
    settings = load_settings({"wal_sync": "interval"}, config, env)
    assert (settings.http_port, settings.grpc_port, settings.wal_sync) == (9000, 9002, "interval")
    with pytest.raises(SettingsError, match="unknown_key"):
        bad = tmp_path / "bad.toml"
        bad.write_text("unknown_key = 1\n")
        load_settings({}, bad, {})
    with pytest.raises(SettingsError, match="config file"):
        broken = tmp_path / "broken.toml"
        broken.write_text("http_port = [\n")
        load_settings({}, broken, {})
