"""Child process for the WAL crash test: appends with ``always`` until it is SIGKILLed.

Usage: ``python crash_writer.py WAL_DIR``. On start it replays the WAL and continues every
stream right after its last replayed offset. It prints ``A <stream> <offset>`` after each
acknowledged append and ``C <stream> <next_offset>`` *before* each mark_committed call, so the
parent knows a bound on what may have been deleted.
"""

from __future__ import annotations

import asyncio
import struct
import sys
from pathlib import Path

from streamhouse.broker.wal import SyncPolicy, WalConfig, WriteAheadLog

STREAMS = 4
KEEP = 15  # offsets kept uncommitted behind the newest one


def make_batch(base_offset: int) -> bytes:
    rest = struct.pack(">hiqqqhii", 0, 0, 0, 0, -1, -1, -1, 1) + bytes(30)
    return struct.pack(">qiiBI", base_offset, 9 + len(rest), 0, 2, 0) + rest


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def writer(wal: WriteAheadLog, stream: int, offset: int) -> None:
    while True:
        await wal.append(stream, make_batch(offset))
        say(f"A {stream} {offset}")
        offset += 1
        if offset % 10 == 0 and offset > KEEP:
            say(f"C {stream} {offset - KEEP}")
            wal.mark_committed(stream, offset - KEEP)


async def main(directory: str) -> None:
    config = WalConfig(Path(directory), sync_policy=SyncPolicy.ALWAYS, file_max_bytes=2048)
    wal = await WriteAheadLog.open(config)
    next_offset = dict.fromkeys(range(STREAMS), 0)
    for entry in wal.replay():
        next_offset[entry.stream_id] = struct.unpack_from(">q", entry.batch)[0] + 1
    for stream, offset in next_offset.items():
        if offset > KEEP:
            say(f"C {stream} {offset - KEEP}")
            wal.mark_committed(stream, offset - KEEP)
    say("READY")
    await asyncio.gather(*(writer(wal, s, o) for s, o in next_offset.items()))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
