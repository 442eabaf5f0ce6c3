"""A circuit breaker: stop calling a store that keeps failing, probe it now and then.

When S3 (or the network to it) is down, every request would otherwise wait out its retries and
timeouts, tying up uploads and fetches for seconds each. After ``failure_threshold`` consecutive
failed requests the breaker opens and calls fail at once with
:class:`~.errors.ObjectStoreUnavailableError`; after ``reset_timeout_s`` it lets exactly one probe
through (half-open). A successful probe closes it, a failed one opens it for another period.

Only failures that say something about the store's health count (timeouts, connection errors,
5xx, throttling after retries); a 404 is a healthy store answering, and is recorded as success.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from datetime import UTC, datetime

from streamhouse.broker.storage.errors import ObjectStoreUnavailableError


class CircuitState(enum.Enum):
    """Where the breaker is: passing calls, failing fast, or letting one probe through."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failures and fails fast while the store looks down.

    Use it as ``breaker.before_call()`` before a request (raises when it must not be made), then
    ``record_success()`` or ``record_failure()`` with the outcome.

    Args:
        failure_threshold: consecutive failures that open the circuit (>= 1).
        reset_timeout_s: how long it stays open before a probe is allowed (> 0).
        clock: monotonic time source in seconds; tests inject a fake one.
        name: shown in error messages (e.g. the bucket), so operators know which store.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout_s: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "object store",
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold!r}")
        if not reset_timeout_s > 0:
            raise ValueError(f"reset_timeout_s must be > 0, got {reset_timeout_s!r}")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = float(reset_timeout_s)
        self.name = name
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_until = 0.0
        self._probe_started: float | None = None
        self.rejected = 0  # calls refused while open, for stats

    @property
    def state(self) -> CircuitState:
        """The current state; an open breaker whose timeout has passed reads as half-open."""
        if self._state is CircuitState.OPEN and self._clock() >= self._opened_until:
            return CircuitState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success."""
        return self._failures

    def before_call(self) -> None:
        """Admits a call or raises.

        Raises:
            ObjectStoreUnavailableError: while open, or while half-open with the probe in flight.
        """
        if self._state is CircuitState.CLOSED:
            return
        now = self._clock()
        if self._state is CircuitState.OPEN:
            if now < self._opened_until:
                self._reject(self._opened_until - now)
            self._state = CircuitState.HALF_OPEN
            self._probe_started = now
            return
        # HALF_OPEN: one probe at a time. A probe that never reported back (its caller was
        # cancelled) is presumed lost after one reset period, so the breaker cannot wedge.
        if self._probe_started is not None and now - self._probe_started < self.reset_timeout_s:
            self.rejected += 1
            raise ObjectStoreUnavailableError(
                f"{self.name} is unavailable: circuit half-open and a probe request is in flight; "
                "failing fast until it completes",
                retry_after_s=0.0,
            )
        self._probe_started = now

    def _reject(self, remaining_s: float) -> None:
        self.rejected += 1
        until = datetime.fromtimestamp(time.time() + remaining_s, UTC)
        raise ObjectStoreUnavailableError(
            f"{self.name} is unavailable: circuit open after {self._failures} consecutive "
            f"failures; failing fast for {remaining_s:.1f}s more "
            f"(until {until:%Y-%m-%dT%H:%M:%S}Z), then one probe request is let through",
            retry_after_s=remaining_s,
        )

    def record_success(self) -> None:
        """The store answered: close the circuit and forget past failures."""
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._probe_started = None

    def record_failure(self) -> None:
        """A request failed after its retries: count it, open the circuit at the threshold."""
        self._failures += 1
        if self._state is CircuitState.OPEN:  # a call admitted earlier; keep the current period
            return
        if self._state is CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._state = CircuitState.OPEN
            self._opened_until = self._clock() + self.reset_timeout_s
            self._probe_started = None
