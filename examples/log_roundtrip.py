"""Append to and read from the durable log, embedded, with the default SQLite + local files.

Run: .venv/bin/python examples/log_roundtrip.py [DATA_DIR]
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from streamhouse.broker.log import Acks, LogConfig, LogManager
from streamhouse.broker.metadata import TopicExistsError
from streamhouse.broker.records import batches_to_arrow, build_batch


async def main(data_dir: Path) -> None:
    manager = await LogManager.open(LogConfig(data_dir=data_dir))
    try:
        with contextlib.suppress(TopicExistsError):
            await manager.create_topic("greetings", partitions=1)
        plog = await manager.partition("greetings", 0)
        batch = build_batch([b"hello", b"world"], keys=[b"k1", b"k2"])
        result = await plog.append([batch], acks=Acks.ALL)
        print(f"appended at offset {result.base_offsets[0]}; high watermark {plog.high_watermark}")
        table = batches_to_arrow(await plog.read(plog.log_start_offset), partition=0)
        for row in table.to_pylist():
            print(row)
    finally:
        await manager.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "data")))
