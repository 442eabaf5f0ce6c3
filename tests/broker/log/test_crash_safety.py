"""SIGKILL at random moments: every acknowledged record survives once; offsets stay dense."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamhouse.broker.log import LogConfig, LogManager
from streamhouse.broker.records import iter_records

WRITER = Path(__file__).with_name("crash_writer.py")


def run_and_kill(args: list[str], rng: random.Random) -> list[tuple[int, int, int]]:
    """Starts the writer, kills it with SIGKILL after a random time, returns its ACK lines."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    ready = proc.stdout.readline()
    assert ready.strip() == b"READY", proc.stderr.read().decode() if proc.stderr else ready
    time.sleep(rng.uniform(0.02, 0.6))
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    acks = []
    for line in out.decode().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "ACK":  # a line cut by the kill is not an ACK
            acks.append((int(parts[1]), int(parts[2]), int(parts[3])))
    return acks


async def read_everything(data_dir: Path, meta: str, objects: str) -> list[tuple[int, bytes]]:
    manager = await LogManager.open(
        LogConfig(data_dir=data_dir, agent_id="crash-agent"),
        metadata_url=meta,
        object_store_url=objects,
    )
    try:
        plog = await manager.partition("crash", 0)
        out: list[tuple[int, bytes]] = []
        offset = plog.log_start_offset
        while offset < plog.high_watermark:
            batches = await plog.read(offset, max_bytes=1 << 20)
            for batch in batches:
                for record in iter_records(batch):
                    if record.offset >= offset:
                        out.append((record.offset, record.value))
            offset = out[-1][0] + 1
        return out
    finally:
        await manager.close()


def check_log(records: list[tuple[int, bytes]], acked: dict[int, tuple[int, int]]) -> None:
    offsets = [offset for offset, _ in records]
    assert offsets == list(range(len(records))), "offsets are not dense from 0"
    seen: dict[int, list[tuple[int, int]]] = collections.defaultdict(list)
    for offset, value in records:
        batch_id, index = value.decode().split(":")
        seen[int(batch_id)].append((offset, int(index)))
    for batch_id, (base, count) in acked.items():
        assert batch_id in seen, f"acknowledged batch {batch_id} is lost"
        assert seen[batch_id] == [(base + i, i) for i in range(count)], f"batch {batch_id} differs"
    for batch_id, items in seen.items():
        # Unacknowledged batches may survive, but only whole and only once.
        indexes = [i for _, i in items]
        assert indexes == list(range(len(indexes))), f"batch {batch_id} is half-visible or doubled"
        assert len(indexes) == 1 + batch_id % 7, f"batch {batch_id} is partial"


@pytest.mark.slow
@pytest.mark.parametrize("wal", ["on", "off"])
async def test_sigkill_loses_no_acknowledged_record(tmp_path: Path, wal: str) -> None:
    rng = random.Random(1234 if wal == "on" else 4321)
    data_dir = tmp_path / "agent"
    meta = f"sqlite:///{tmp_path / 'meta.db'}"
    objects = f"file://{tmp_path / 'objects'}"
    acked: dict[int, tuple[int, int]] = {}
    rounds = 12
    for round_no in range(rounds):
        for batch_id, base, count in run_and_kill(
            [str(data_dir), meta, objects, str(round_no * 1_000_000), wal], rng
        ):
            acked[batch_id] = (base, count)
        if round_no % 3 == 2 or round_no == rounds - 1:
            # Recovery by a reader also seals and commits what the WAL held.
            check_log(await read_everything(data_dir, meta, objects), acked)
    assert len(acked) > 50, "the writer acknowledged too little for the test to mean anything"
