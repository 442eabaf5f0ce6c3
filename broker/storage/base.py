"""The object-store contract shared by every backend, and the key rules they all enforce.

Segments are immutable objects addressed by a key such as ``topics/<id>/<partition>/<offset>``.
Both backends (local filesystem and S3) implement :class:`ObjectStore` and run the same contract
tests, so the log above never needs to know which one it has. Keys are validated identically in
both, so a key that works on a laptop also works against S3 and vice versa.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: S3's limit on key length, applied to every backend so keys stay portable.
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object: its key (without the store's prefix) and its size in bytes."""

    key: str
    size: int


@runtime_checkable
class ObjectStore(Protocol):
    """A flat namespace of immutable blobs.

    Every method is a coroutine; failures raise :class:`~.errors.ObjectStoreError` subclasses
    (:class:`~.errors.ObjectNotFoundError` for a missing key), bad arguments raise ``ValueError``.
    """

    async def put(self, key: str, data: bytes) -> None:
        """Stores ``data`` under ``key``; readers see the whole object or none of it."""
        ...

    async def get(self, key: str) -> bytes:
        """Returns the whole object."""
        ...

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        """Returns bytes ``[start, end)``, clamped to the object's size like a slice."""
        ...

    async def size(self, key: str) -> int:
        """Returns the object's size in bytes."""
        ...

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Returns every object whose key starts with ``prefix``, sorted by key."""
        ...

    async def delete(self, key: str) -> None:
        """Removes the object; deleting a missing key is not an error."""
        ...

    async def close(self) -> None:
        """Releases connections; the store is unusable afterwards."""
        ...


def validate_key(key: str) -> str:
    """Checks that ``key`` is a portable object key and returns it.

    A key is ``/``-separated, relative, and has no empty, ``.`` or ``..`` segments, no NUL and no
    backslash. These rules keep the local backend inside its root directory (no path traversal)
    and keep keys meaning the same thing on every backend.

    Raises:
        ValueError: naming the key and the rule it breaks.
    """
    if not isinstance(key, str):
        raise ValueError(f"object key must be a str, got {type(key).__name__}")
    if not key:
        raise ValueError("object key must not be empty")
    if "\x00" in key:
        raise ValueError(f"object key {key!r} contains a NUL character")
    if "\\" in key:
        raise ValueError(f"object key {key!r} contains a backslash; use '/' as separator")
    if key.startswith("/"):
        raise ValueError(f"object key {key!r} must be relative (no leading '/')")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValueError(f"object key is longer than {MAX_KEY_BYTES} bytes: {key[:60]!r}...")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(
                f"object key {key!r} has an empty, '.' or '..' segment; keys are plain relative "
                "paths such as 'topics/a/0/00000000000000000000.seg'"
            )
    return key


def validate_prefix(prefix: str) -> str:
    """Checks a listing prefix: any leading part of a valid key (it may end in '/')."""
    if not isinstance(prefix, str):
        raise ValueError(f"list prefix must be a str, got {type(prefix).__name__}")
    if "\x00" in prefix or "\\" in prefix or prefix.startswith("/"):
        raise ValueError(f"list prefix {prefix!r} cannot match any valid key")
    if any(segment in (".", "..") for segment in prefix.split("/")[:-1]):
        raise ValueError(f"list prefix {prefix!r} has a '.' or '..' segment")
    return prefix


def validate_range(start: int, end: int) -> None:
    """Checks a byte range ``[start, end)`` before any I/O.

    Raises:
        ValueError: when ``start`` is negative or greater than ``end``.
    """
    if not isinstance(start, int) or not isinstance(end, int):
        raise ValueError(f"byte range bounds must be int, got {start!r}, {end!r}")
    if start < 0 or end < start:
        raise ValueError(f"invalid byte range [{start}, {end}): need 0 <= start <= end")
