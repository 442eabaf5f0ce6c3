"""Following a topic like ``tail -f``, or reading up to a point and stopping.

Without ``--group`` the consumer is assigned the partitions directly; with it, it joins the
group and the server assigns them. Ctrl-C (or SIGTERM) stops at a poll boundary: everything
polled has been printed, so the positions committed on close (group mode) are exactly past
the last printed record.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from streamhouse.broker.client import AsyncAdminClient, AsyncConsumer, TopicPartition
from streamhouse.workbench.streamctl.plan import Plan
from streamhouse.workbench.streamctl.record_formats import write_records
from streamhouse.workbench.streamctl.session import fail

POLL_TIMEOUT_MS = 500


async def follow(server: str, plan: Plan) -> None:
    """Prints the plan's records until it is done or a signal stops it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with AsyncAdminClient(server) as admin:
        described = await admin.describe_topic(plan.topic)
    count = described.topic.partitions
    wanted = plan.partitions or list(range(count))
    if any(p >= count for p in wanted):
        fail(f"topic '{plan.topic}' has partitions 0..{count - 1}")
    ends = {TopicPartition(plan.topic, p.partition): p.next_offset for p in described.partitions}
    consumer = AsyncConsumer(
        server,
        group_id=plan.group,
        client_id="streamctl",
        auto_offset_reset="earliest" if plan.from_beginning else "latest",
        enable_auto_commit=plan.group is not None,
    )
    try:
        if plan.group is not None:
            consumer.subscribe([plan.topic])
        else:
            consumer.assign([TopicPartition(plan.topic, p) for p in wanted])
            if plan.offset is not None:
                for p in wanted:
                    consumer.seek(TopicPartition(plan.topic, p), plan.offset)
        await _follow(consumer, plan, ends, stop)
    finally:
        await consumer.close()


async def _follow(
    consumer: AsyncConsumer, plan: Plan, ends: dict[TopicPartition, int], stop: asyncio.Event
) -> None:
    remaining = plan.limit
    stopping = asyncio.create_task(stop.wait())
    try:
        while True:
            polling = asyncio.create_task(consumer.poll(POLL_TIMEOUT_MS, max_records=remaining))
            await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not polling.done():
                polling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await polling
                return
            records = polling.result()
            write_records(records, plan.form)
            if remaining is not None:
                remaining -= len(records)
                if remaining <= 0:
                    return
            if stop.is_set() or (plan.exit_at_end and _at_end(consumer, ends)):
                return
    finally:
        stopping.cancel()


def _at_end(consumer: AsyncConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Every partition this consumer reads is at or past its end offset from the start."""
    for tp in consumer.assignment():
        position = consumer.position(tp)
        if position is None or position < ends.get(tp, 0):
            return False
    return True
