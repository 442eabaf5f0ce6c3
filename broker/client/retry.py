"""Exponential backoff with jitter, and a loop that retries a call while its error is retryable.

Jitter matters here: after a server restart every producer and consumer retries at once, and
identical delays would make them hammer the new server in lockstep.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from streamhouse.broker.client.errors import StreamHouseError

T = TypeVar("T")

JITTER = 0.2  # each delay is scaled by a random factor in [1 - JITTER, 1 + JITTER]


@dataclass
class RetryPolicy:
    """``retries`` further attempts after the first, waiting ``delay(n)`` before attempt n+1."""

    retries: int = 5
    backoff_ms: int = 100
    max_backoff_ms: int = 2000
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, not {self.retries}")
        if self.backoff_ms < 0 or self.max_backoff_ms < self.backoff_ms:
            raise ValueError(
                f"need 0 <= retry_backoff_ms ({self.backoff_ms}) <= "
                f"retry_backoff_max_ms ({self.max_backoff_ms})"
            )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0 = the first try)."""
        base = min(self.max_backoff_ms, self.backoff_ms * 2 ** min(attempt, 30))
        jittered = base * self.rng.uniform(1 - JITTER, 1 + JITTER)
        return min(jittered, self.max_backoff_ms) / 1000

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether to try again after ``error`` ended attempt number ``attempt``."""
        return attempt < self.retries and isinstance(error, StreamHouseError) and error.retryable

    async def call(
        self,
        attempt_once: Callable[[], Awaitable[T]],
        on_retry: Callable[[StreamHouseError], Awaitable[None]] | None = None,
    ) -> T:
        """Runs ``attempt_once`` until it succeeds, fails for good, or retries run out.

        ``on_retry`` sees each retryable error before the backoff (to refresh metadata, follow
        a leader hint, ...).
        """
        attempt = 0
        while True:
            try:
                return await attempt_once()
            except StreamHouseError as exc:
                if not self.should_retry(exc, attempt):
                    raise
                if on_retry is not None:
                    await on_retry(exc)
                await asyncio.sleep(self.delay(attempt))
                attempt += 1
