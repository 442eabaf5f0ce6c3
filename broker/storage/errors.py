"""Errors of the object stores, one class per thing a caller can act on.

Callers distinguish three cases: the object is not there (retention deleted it, or it was
never written: a logic error or a stale reference), the store is down and we are deliberately
not even trying (circuit open: back off, serve from elsewhere), and any other failure of the
store (retried already; surface it).
"""

from __future__ import annotations


class ObjectStoreError(Exception):
    """A store operation failed after the retries it was allowed."""


class ObjectNotFoundError(ObjectStoreError):
    """No object exists under the key.

    Attributes:
        key: the key that was asked for, as the caller spelt it (without any store prefix).
    """

    def __init__(self, key: str) -> None:
        super().__init__(f"object not found: {key!r}")
        self.key = key


class ObjectStoreUnavailableError(ObjectStoreError):
    """The circuit breaker is open: the call failed fast without reaching the store.

    Attributes:
        retry_after_s: seconds until the breaker lets a probe request through (0 when a probe
            is already in flight and the caller should simply try again shortly).
    """

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
