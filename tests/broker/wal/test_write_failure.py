"""A write that fails half-way leaves nothing of that append in the WAL.

The failure is real: the child process lowers RLIMIT_FSIZE so that the kernel accepts only part
of the write and then refuses the rest with EFBIG, exactly as with a full disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import asyncio, json, resource, signal, struct, sys
from pathlib import Path
from streamhouse.broker.wal import SyncPolicy, WalConfig, WalError, WriteAheadLog

def make_batch(base_offset):
    rest = struct.pack(">hiqqqhii", 0, 0, 0, 0, -1, -1, -1, 1) + bytes(40)
    return struct.pack(">qiiBI", base_offset, 9 + len(rest), 0, 2, 0) + rest

async def main(directory):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    config = WalConfig(Path(directory), sync_policy=SyncPolicy.NEVER)
    wal = await WriteAheadLog.open(config)
    for i in range(3):
        await wal.append(1, make_batch(i))
    size_before = wal.size_bytes
    active = sorted(Path(directory).glob("wal-*.log"))[-1]
    _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # room for one and a half of the next two entries
    resource.setrlimit(resource.RLIMIT_FSIZE, (active.stat().st_size + 150, hard))
    error = None
    try:
        await wal.append_many([(1, make_batch(3)), (2, make_batch(0))])
    except WalError as exc:
        error = str(exc)
    file_size_after_error = active.stat().st_size
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    await wal.append(2, make_batch(7))
    result = {
        "error": error,
        "size_unchanged": wal.size_bytes - size_before,
        "file_cut_back": file_size_after_error,
        "appends": wal.stats.appends,
    }
    await wal.close()
    wal = await WriteAheadLog.open(config)
    result["replayed"] = [
        [e.stream_id, struct.unpack_from(">q", e.batch)[0]] for e in wal.replay()
    ]
    result["problems"] = wal.recovery_report.problems
    await wal.close()
    print(json.dumps(result))

asyncio.run(main(sys.argv[1]))
"""


def test_failed_write_is_cut_back_and_the_wal_keeps_working(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "wal")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["error"] is not None and "nothing of this append was kept" in result["error"]
    assert "File too large" in result["error"]
    entry = 16 + 61 + 40
    assert result["file_cut_back"] == 20 + 3 * entry  # the partial entry was truncated away
    assert result["size_unchanged"] == entry  # only the append after the failure counts
    assert result["appends"] == 4
    assert result["replayed"] == [[1, 0], [1, 1], [1, 2], [2, 7]]
    assert result["problems"] == []
