"""Bloom filters of record keys, so a key lookup skips segments (and row groups) without them.

A filter answers "may this key be here?" with no false negatives; about 0.05% of absent keys
are reported present (16 bits per distinct key, 11 probes). That rate is per row group: a
segment of 8 row groups answers a wrong "maybe" for ~0.4% of absent keys, so a key lookup over
a hundred segments reads on average less than one segment it did not need.

Keys are hashed with 64-bit FNV-1a over every byte, in a compiled kernel over the Arrow buffers
of a whole key column at once, then mixed (splitmix64's finaliser) and probed by double hashing.
The algorithm is ours and fixed, so a filter stays valid across library upgrades; it is stored
with :data:`HASH_NAME` (and its probe count), and a reader that finds another name must treat
the filter as absent (read everything).

A null key is never added and never looked up: a null key matches no key equality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

#: Identifies the hash and probing scheme; change it whenever either changes.
HASH_NAME = "fnv1a64-splitmix-dh-v1"
BITS_PER_KEY = 16
PROBES = 11
MAX_PROBES = 32
MIN_BITS = 64

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@njit(cache=True, nogil=True)
def _fnv1a64(offsets: np.ndarray, data: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    for i in range(out.shape[0]):
        h = _FNV_OFFSET
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[j])) * _FNV_PRIME
        # splitmix64 finaliser: FNV's low bits are weak for short keys.
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        out[i] = h ^ (h >> np.uint64(31))


@njit(cache=True, nogil=True)
def _set_bits(
    hashes: np.ndarray, bits: np.ndarray, nbits: int, probes: int
) -> None:  # pragma: no cover
    for h in hashes:
        h1 = h & np.uint64(0xFFFFFFFF)
        h2 = (h >> np.uint64(32)) | np.uint64(1)
        for k in range(probes):
            pos = (h1 + np.uint64(k) * h2) % np.uint64(nbits)
            bits[pos >> np.uint64(3)] |= np.uint8(1) << np.uint8(pos & np.uint64(7))


@njit(cache=True, nogil=True)
def _any_present(
    hashes: np.ndarray, bits: np.ndarray, nbits: int, probes: int
) -> bool:  # pragma: no cover
    for h in hashes:
        h1 = h & np.uint64(0xFFFFFFFF)
        h2 = (h >> np.uint64(32)) | np.uint64(1)
        present = True
        for k in range(probes):
            pos = (h1 + np.uint64(k) * h2) % np.uint64(nbits)
            if not bits[pos >> np.uint64(3)] & (np.uint8(1) << np.uint8(pos & np.uint64(7))):
                present = False
                break
        if present:
            return True
    return False


def hash_keys(keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The 64-bit hashes of the non-null keys of a binary column (nulls are dropped)."""
    column = pc.drop_null(keys)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    column = column.cast(pa.binary())  # large/string keys hash by their bytes alike
    n = len(column)
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    _, offsets_buf, data_buf = column.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[column.offset : column.offset + n + 1]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    )
    _fnv1a64(offsets, data, out)
    return out


@dataclass(frozen=True)
class KeyFilter:
    """A Bloom filter over a set of keys; ``bits`` is ``nbits`` bits, little-endian per byte,
    each key setting ``probes`` of them."""

    nbits: int
    bits: np.ndarray
    probes: int = PROBES

    @classmethod
    def build(cls, keys: pa.Array | pa.ChunkedArray) -> KeyFilter:
        hashes = np.unique(hash_keys(keys))
        nbits = max(MIN_BITS, -(-len(hashes) * BITS_PER_KEY // 64) * 64)
        bits = np.zeros(nbits // 8, dtype=np.uint8)
        _set_bits(hashes, bits, nbits, PROBES)
        return cls(nbits, bits, PROBES)

    def may_contain_any(self, hashes: np.ndarray) -> bool:
        """False only when none of the hashed keys was added."""
        return bool(_any_present(hashes, self.bits, self.nbits, self.probes))

    @property
    def nbytes(self) -> int:
        return int(self.bits.nbytes)

    def header(self) -> dict[str, int]:
        """What besides the bits a reader needs (JSON-ready); ``from_parts`` reverses it."""
        return {"nbits": self.nbits, "probes": self.probes}

    @classmethod
    def from_parts(cls, header: dict[str, object], bits: bytes) -> KeyFilter:
        """Raises ValueError (or KeyError) when the stored form is inconsistent."""
        nbits = int(header["nbits"])  # type: ignore[arg-type]
        probes = int(header["probes"])  # type: ignore[arg-type]
        bits = np.frombuffer(bits, dtype=np.uint8)
        if nbits < MIN_BITS or nbits % 64 or bits.nbytes * 8 != nbits:
            raise ValueError(f"key filter of {nbits} bits holds {bits.nbytes} bytes")
        if not 1 <= probes <= MAX_PROBES:
            raise ValueError(f"key filter with {probes} probes")
        return cls(nbits, bits, probes)
