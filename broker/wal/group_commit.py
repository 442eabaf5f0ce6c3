"""Group commit: many appends waiting for durability share one fsync.

Appends advance a logical "written up to" position; an fsync round started at position P makes
everything written before P durable. A caller that needs its bytes durable waits on a future
for "synced >= my position". At most one round runs at a time; appends that arrive while it
runs queue up, and the next round covers all of them at once. That is what keeps the fsync
rate far below the append rate under concurrency.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable

from streamhouse.broker.wal.errors import WalError


class GroupCommit:
    """Schedules fsync rounds and wakes the appends each round made durable.

    Args:
        run_round: makes every byte written before the given logical position durable (fsyncs
            files and the directory in a worker thread). If it raises, the WAL is broken for
            good: after a failed fsync the kernel may have dropped the dirty pages, so no later
            fsync can prove anything. Every waiter then gets the error, and so does every
            later call.
    """

    def __init__(self, run_round: Callable[[int], Awaitable[None]]) -> None:
        self._run_round = run_round
        self.written = 0
        self.synced = 0
        self._wanted = 0
        self._forced = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._tiebreak = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self.failure: WalError | None = None

    @property
    def in_flight(self) -> bool:
        """True while a round runs, i.e. while a worker thread may be using the file fds."""
        return self._task is not None

    async def wait_synced(self, position: int) -> None:
        """Return once everything up to ``position`` is durable.

        Raises:
            WalError: an fsync failed (now or earlier).
        """
        if self.failure is not None:
            raise self.failure
        if self.synced >= position:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (position, next(self._tiebreak), future))
        self._wanted = max(self._wanted, position)
        self._start()
        await future

    def request(self) -> None:
        """Start a round in the background even if nothing new was written.

        Used after files were created or deleted, so that the directory is fsynced soon.
        """
        if self.failure is None:
            self._forced = True
            self._start()

    async def drain(self) -> None:
        """Wait for the running round (and any it chains into) to finish."""
        while self._task is not None:
            await asyncio.shield(self._task)

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="wal-fsync")

    async def _loop(self) -> None:
        try:
            while self.failure is None and (self._wanted > self.synced or self._forced):
                self._forced = False
                target = self.written
                await self._run_round(target)
                self.synced = max(self.synced, target)
                self._wake(self.synced)
        except Exception as exc:  # any fsync failure breaks the WAL for good
            self.fail(WalError(f"WAL fsync failed ({exc!r}); the WAL refuses further appends"))
        finally:
            self._task = None

    def _wake(self, synced: int) -> None:
        waiters = self._waiters
        while waiters and waiters[0][0] <= synced:
            future = heapq.heappop(waiters)[2]
            if not future.done():  # its append may have been cancelled meanwhile
                future.set_result(None)

    def fail(self, error: WalError) -> None:
        """Break the WAL: wake every waiter with ``error`` and refuse later waits."""
        if self.failure is None:
            self.failure = error
        while self._waiters:
            future = heapq.heappop(self._waiters)[2]
            if not future.done():
                future.set_exception(self.failure)
