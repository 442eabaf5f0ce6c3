"""A token bucket that keeps our request rate under what the object store tolerates.

S3 answers bursts above its per-prefix limits with 503 SlowDown; retrying those only adds load.
Taking a token before every request smooths our own bursts (a seal storm after a restart, a
catch-up read) so throttling stays the exception. Waiters are served first come, first served.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

#: Float slack so a refill that lands a hair short of ``n`` (rounding) does not wait again.
_EPSILON = 1e-9


class TokenBucket:
    """Allows ``rate`` tokens per second on average and up to ``burst`` at once.

    Args:
        rate: tokens added per second (> 0).
        burst: bucket capacity (>= 1); the bucket starts full.
        clock: monotonic time source in seconds; tests inject a fake one.
        sleep: coroutine used to wait; tests pass one that advances their fake clock.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"token bucket rate must be > 0 tokens/s, got {rate!r}")
        if burst < 1:
            raise ValueError(f"token bucket burst must be >= 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now

    @property
    def tokens(self) -> float:
        """Tokens available right now (for metrics and tests)."""
        self._refill()
        return self._tokens

    def try_acquire(self, n: int = 1) -> bool:
        """Takes ``n`` tokens if they are available now, without waiting."""
        self._check(n)
        if self._lock.locked():  # others are queued: do not overtake them
            return False
        self._refill()
        if self._tokens >= n - _EPSILON:
            self._tokens -= n
            return True
        return False

    async def acquire(self, n: int = 1) -> None:
        """Waits until ``n`` tokens are available and takes them.

        The lock is held while waiting so waiters are served in arrival order and a stream of
        small requests cannot starve a large one.
        """
        self._check(n)
        async with self._lock:
            self._refill()
            while self._tokens < n - _EPSILON:
                await self._sleep((n - self._tokens) / self.rate)
                self._refill()
            self._tokens -= n

    def _check(self, n: int) -> None:
        if n < 1 or n > self.burst:
            raise ValueError(f"can take between 1 and burst={self.burst} tokens at once, not {n}")
