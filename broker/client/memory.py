"""The producer's buffer budget: ``send`` waits while ``max_buffer_bytes`` are unacknowledged.

Without it a producer faster than the server grows its queue until the process runs out of
memory. Waiters are served in arrival order so a large record is not starved by small ones,
and a record larger than the whole budget is let through once the buffer is empty.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable


class BufferPool:
    """``on_exhausted`` is called when a reservation has to wait: the producer then sends its
    lingering batches at once, since nothing frees memory while they sit in the buffer."""

    def __init__(self, limit: int, on_exhausted: Callable[[], None] | None = None) -> None:
        if limit <= 0:
            raise ValueError(f"max_buffer_bytes must be > 0, not {limit}")
        self.limit = limit
        self.on_exhausted = on_exhausted
        self.used = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self._error: BaseException | None = None

    def try_reserve(self, size: int) -> bool:
        """Takes ``size`` bytes now if they fit and nobody waits before us."""
        if self._error is not None:
            raise self._error
        if not self._waiters and self._fits(size):
            self.used += size
            return True
        return False

    async def reserve(self, size: int) -> None:
        """Takes ``size`` bytes, waiting (in FIFO order) until enough are released."""
        if self.try_reserve(size):
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((size, waiter))
        if self.on_exhausted is not None:
            self.on_exhausted()
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(size)  # granted just as we were cancelled: give it back
            else:
                self._drop(waiter)
            raise

    def release(self, size: int) -> None:
        self.used -= size
        self._grant()

    def fail_waiters(self, error: BaseException) -> None:
        """Wakes every waiter with ``error`` (the producer closed or failed for good)."""
        self._error = error
        while self._waiters:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def _fits(self, size: int) -> bool:
        return self.used + size <= self.limit or self.used == 0

    def _grant(self) -> None:
        while self._waiters:
            size, waiter = self._waiters[0]
            if waiter.done():
                self._waiters.popleft()
                continue
            if not self._fits(size):
                return
            self._waiters.popleft()
            self.used += size
            waiter.set_result(None)

    def _drop(self, waiter: asyncio.Future[None]) -> None:
        self._waiters = collections.deque(w for w in self._waiters if w[1] is not waiter)
        self._grant()
