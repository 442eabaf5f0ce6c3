"""Child process for the crash tests: appends with acks=all and reports every acknowledgement.

Each batch carries records ``{batch_id}:{i}``; after a batch is acknowledged the process prints
``ACK {batch_id} {base_offset} {count}`` and flushes, so the parent knows exactly what was
promised before it SIGKILLs this process at a random moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from streamhouse.broker.log import Acks, LogConfig, LogManager
from streamhouse.broker.metadata import TopicExistsError
from streamhouse.broker.records import build_batch, validate_batch


async def main(data_dir: str, meta: str, objects: str, first_batch: int, wal: str) -> None:
    config = LogConfig(
        data_dir=Path(data_dir),
        agent_id="crash-agent",
        wal_enabled=wal != "off",
        seal_check_interval_ms=5,
    )
    manager = await LogManager.open(config, metadata_url=meta, object_store_url=objects)
    with contextlib.suppress(TopicExistsError):
        await manager.create_topic("crash", partitions=1)
    # Small, frequent segments so kills land during seal, upload and commit too.
    await manager.update_topic_config("crash", {"segment.ms": 15, "segment.bytes": 4096})
    plog = await manager.partition("crash", 0)
    # Compile (or load from numba's cache) the batch kernels before the parent starts its clock.
    validate_batch(build_batch([b"warm-up"]))
    print("READY", flush=True)
    batch_id = first_batch

    async def writer(lane: int) -> None:
        nonlocal batch_id
        while True:
            my_id = batch_id
            batch_id += 1
            count = 1 + my_id % 7
            values = [f"{my_id}:{i}".encode() for i in range(count)]
            result = await plog.append([build_batch(values)], acks=Acks.ALL)
            print(f"ACK {my_id} {result.base_offsets[0]} {count}", flush=True)

    await asyncio.gather(*(writer(lane) for lane in range(4)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))
