"""Long-poll support shared by the gRPC and Kafka fetch paths."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from streamhouse.broker.log.partition import PartitionLog


async def wait_for_any(positions: Sequence[tuple[PartitionLog, int]], timeout_s: float) -> None:
    """Returns once any ``(log, offset)`` has data at ``offset`` (its high watermark passed it),
    or after ``timeout_s``. With nothing to watch it simply sleeps, so callers re-read later."""
    if not positions:
        await asyncio.sleep(timeout_s)
        return
    waits = [asyncio.ensure_future(log.wait_for_data(at, timeout_s)) for log, at in positions]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waits, return_exceptions=True)
