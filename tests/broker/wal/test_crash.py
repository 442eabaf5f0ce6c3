"""SIGKILL at random moments never loses an acknowledged ``always`` append."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamhouse.broker.wal import WalConfig, WriteAheadLog

WRITER = Path(__file__).with_name("crash_writer.py")
KILLS = 20


def run_and_kill(directory: Path, rng: random.Random) -> list[list[str]]:
    """Start the writer, SIGKILL it after a random time, return its complete output lines."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"writer died before READY: {proc.stderr.read().decode()}")
        if line.strip() == b"READY":
            break
        lines.append(line.decode().split())
    time.sleep(rng.uniform(0.01, 0.3))
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # a line cut by the kill has no newline: it was not acknowledged
    complete = out.decode().split("\n")[:-1]
    return lines + [line.split() for line in complete]


async def replayed_offsets(directory: Path) -> dict[int, list[int]]:
    wal = await WriteAheadLog.open(WalConfig(directory))
    try:
        found: dict[int, list[int]] = collections.defaultdict(list)
        for entry in wal.replay():
            found[entry.stream_id].append(int.from_bytes(entry.batch[:8], "big", signed=True))
        return found
    finally:
        await wal.close()


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_append(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    directory = tmp_path / "wal"
    acked: dict[int, set[int]] = collections.defaultdict(set)
    committed_bound: dict[int, int] = collections.defaultdict(int)
    total_acks = 0
    for kill in range(KILLS):
        for line in run_and_kill(directory, rng):
            if line[0] == "A":
                acked[int(line[1])].add(int(line[2]))
                total_acks += 1
            elif line[0] == "C":
                committed_bound[int(line[1])] = max(committed_bound[int(line[1])], int(line[2]))

        found = asyncio.run(replayed_offsets(directory))

        for stream, offsets in found.items():
            assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), (
                f"kill {kill}: stream {stream} has gaps or duplicates"
            )
        for stream, offsets in acked.items():
            # everything acknowledged and not yet possibly committed must be there
            needed = {o for o in offsets if o >= committed_bound[stream]}
            missing = needed - set(found.get(stream, []))
            assert not missing, f"kill {kill}: stream {stream} lost acknowledged {sorted(missing)}"
            if found.get(stream):
                assert found[stream][0] <= max(committed_bound[stream], min(offsets))
    assert total_acks > 200, "the writer barely ran; the test proves little"
