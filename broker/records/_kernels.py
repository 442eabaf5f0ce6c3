"""Compiled record walkers: the only code that touches individual records on a hot path.

Records inside a batch are varint-framed, so they cannot be read with numpy slicing; these
numba kernels walk them at native speed over whole sets of batches at once.

* :func:`scan` validates the records of many sections (structure, bounds, counts, offset
  deltas, UTF-8 header keys) and totals what a decode will need, allocating nothing.
* :func:`fill` decodes the sections that ``scan`` accepted into flat arrays and byte buffers
  shaped like Arrow's (offsets + data + validity), so building Arrow arrays is zero-copy.
* :func:`encoded_sizes` and :func:`encode` build a records section from flat columns.

Every read is bounds-checked against the end of its section and its record: a hostile length
can make a kernel report an error, never read outside the buffer. This module imports numba,
so the package imports it lazily; kernels compile on first use and are cached on disk.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Status codes reported by scan(); batch.py turns them into exceptions with positions.
OK = 0
OVERRUN = 1  # a record runs past the end of the records section
UNDERRUN = 2  # the section ends before record_count records were read
LEFTOVER = 3  # bytes remain after record_count records
LAST_DELTA = 4  # the last record's offset delta is not the header's lastOffsetDelta
BAD_VARINT = 5  # a varint is longer than allowed or out of range
FIELD_OVERRUN = 6  # a field runs past the end of its record
BAD_LENGTH = 7  # a length below -1, a negative record length or header count
NULL_HEADER_KEY = 8  # a header key with length -1 (keys are non-null strings)
SIZE_MISMATCH = 9  # a record's fields do not fill its declared length
OFFSET_ORDER = 10  # offset deltas are negative or not increasing
BAD_UTF8 = 11  # a header key is not valid UTF-8

# Slots of the ``totals`` array filled by scan().
T_RECORDS, T_HEADERS, T_KEY_BYTES, T_VALUE_BYTES, T_HKEY_BYTES, T_HVALUE_BYTES = range(6)
# Slots of the ``err`` array: what went wrong and where.
E_CODE, E_SECTION, E_RECORD, E_START, E_POS, E_VALUE = range(6)

_MASK63 = 0x7FFFFFFFFFFFFFFF
_MASK57 = 0x01FFFFFFFFFFFFFF
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


@njit(cache=True, nogil=True, inline="always")
def _varint(buf, pos, end, max_bytes):
    """Zigzag varint at ``pos``; returns (value, next pos), next pos -1 = cut off, -2 = too long."""
    result = np.int64(0)
    shift = 0
    for _ in range(max_bytes):
        if pos >= end:
            return np.int64(0), -1
        b = np.int64(buf[pos])
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return ((result >> 1) & _MASK63) ^ -(result & 1), pos
        shift += 7
    return np.int64(0), -2


@njit(cache=True, nogil=True, inline="always")
def _varint32(buf, pos, end):
    value, nxt = _varint(buf, pos, end, 5)
    if nxt >= 0 and (value < _INT32_MIN or value > _INT32_MAX):
        return np.int64(0), -2
    return value, nxt


@njit(cache=True, nogil=True)
def _valid_utf8(buf, start, stop):
    """Strict UTF-8 check (no overlongs, no surrogates, nothing above U+10FFFF)."""
    i = start
    while i < stop:
        b = buf[i]
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b <= 0xDF:
            n = 1
            lo, hi = 0x80, 0xBF
        elif b == 0xE0:
            n = 2
            lo, hi = 0xA0, 0xBF
        elif b == 0xED:
            n = 2
            lo, hi = 0x80, 0x9F
        elif 0xE1 <= b <= 0xEF:
            n = 2
            lo, hi = 0x80, 0xBF
        elif b == 0xF0:
            n = 3
            lo, hi = 0x90, 0xBF
        elif 0xF1 <= b <= 0xF3:
            n = 3
            lo, hi = 0x80, 0xBF
        elif b == 0xF4:
            n = 3
            lo, hi = 0x80, 0x8F
        else:
            return False
        if i + n >= stop:
            return False
        second = buf[i + 1]
        if second < lo or second > hi:
            return False
        for k in range(2, n + 1):
            c = buf[i + k]
            if c < 0x80 or c > 0xBF:
                return False
        i += n + 1
    return True


@njit(cache=True, nogil=True)
def _fail(err, code, section, record, start, pos, value):
    err[E_CODE] = code
    err[E_SECTION] = section
    err[E_RECORD] = record
    err[E_START] = start
    err[E_POS] = pos
    err[E_VALUE] = value
    return code


@njit(cache=True, nogil=True)
def scan(buf, starts, ends, counts, last_deltas, totals, err):
    """Validates every record of every section ``buf[starts[s]:ends[s]]``.

    Args:
        buf: uint8 array holding all sections.
        starts, ends: int64 section bounds.
        counts: int64 record count each section's header declares.
        last_deltas: int64 lastOffsetDelta each header declares.
        totals: int64[6], incremented with T_* sums for the sections (for ``fill``'s buffers).
        err: int64[6], filled with E_* details when the result is not OK.

    Returns:
        OK, or the first error code found.
    """
    n_buf = buf.shape[0]
    for s in range(starts.shape[0]):
        p = starts[s]
        end = ends[s]
        if p < 0 or end > n_buf or p > end:
            return _fail(err, OVERRUN, s, 0, p, p, end)
        count = counts[s]
        prev_delta = np.int64(-1)
        for i in range(count):
            if p >= end:
                return _fail(err, UNDERRUN, s, i, p, p, count)
            length, q = _varint32(buf, p, end)
            if q == -1:
                return _fail(err, OVERRUN, s, i, p, p, 0)
            if q == -2:
                return _fail(err, BAD_VARINT, s, i, p, p, 0)
            if length < 0:
                return _fail(err, BAD_LENGTH, s, i, p, p, length)
            if length > end - q:
                return _fail(err, OVERRUN, s, i, p, p, length)
            rec_end = q + length
            if q >= rec_end:  # no room for the attributes byte
                return _fail(err, FIELD_OVERRUN, s, i, p, q, 0)
            q += 1
            _, q2 = _varint(buf, q, rec_end, 10)  # timestamp delta
            if q2 < 0:
                return _fail(err, FIELD_OVERRUN if q2 == -1 else BAD_VARINT, s, i, p, q, 0)
            q = q2
            delta, q2 = _varint32(buf, q, rec_end)
            if q2 < 0:
                return _fail(err, FIELD_OVERRUN if q2 == -1 else BAD_VARINT, s, i, p, q, 0)
            if delta <= prev_delta:
                return _fail(err, OFFSET_ORDER, s, i, p, q, delta)
            prev_delta = delta
            q = q2
            for which in range(2):  # key, then value
                size, q2 = _varint32(buf, q, rec_end)
                if q2 < 0:
                    return _fail(err, FIELD_OVERRUN if q2 == -1 else BAD_VARINT, s, i, p, q, 0)
                if size < -1:
                    return _fail(err, BAD_LENGTH, s, i, p, q, size)
                if size > rec_end - q2:
                    return _fail(err, FIELD_OVERRUN, s, i, p, q, size)
                if size > 0:
                    totals[T_KEY_BYTES + which] += size
                    q2 += size
                q = q2
            n_headers, q2 = _varint32(buf, q, rec_end)
            if q2 < 0:
                return _fail(err, FIELD_OVERRUN if q2 == -1 else BAD_VARINT, s, i, p, q, 0)
            if n_headers < 0:
                return _fail(err, BAD_LENGTH, s, i, p, q, n_headers)
            q = q2
            for _h in range(n_headers):  # each header takes >= 2 bytes, so this is bounded
                size, q2 = _varint32(buf, q, rec_end)
                if q2 < 0:
                    return _fail(err, FIELD_OVERRUN if q2 == -1 else BAD_VARINT, s, i, p, q, 0)
                if size < 0:
                    return _fail(
                        err, NULL_HEADER_KEY if size == -1 else BAD_LENGTH, s, i, p, q, size
                    )
                if size > rec_end - q2:
                    return _fail(err, FIELD_OVERRUN, s, i, p, q, size)
                if not _valid_utf8(buf, q2, q2 + size):
                    return _fail(err, BAD_UTF8, s, i, p, q2, size)
                totals[T_HKEY_BYTES] += size
                q = q2 + size
                size, q2 = _varint32(buf, q, rec_end)
                if q2 < 0:
                    return _fail(err, FIELD_OVERRUN if q2 == -1 else BAD_VARINT, s, i, p, q, 0)
                if size < -1:
                    return _fail(err, BAD_LENGTH, s, i, p, q, size)
                if size > rec_end - q2:
                    return _fail(err, FIELD_OVERRUN, s, i, p, q, size)
                if size > 0:
                    totals[T_HVALUE_BYTES] += size
                    q2 += size
                q = q2
            totals[T_HEADERS] += n_headers
            if q != rec_end:
                return _fail(err, SIZE_MISMATCH, s, i, p, p, length)
            p = rec_end
        if p != end:
            return _fail(err, LEFTOVER, s, count, p, p, end - p)
        if count > 0 and prev_delta != last_deltas[s]:
            return _fail(err, LAST_DELTA, s, count - 1, p, p, prev_delta)
        totals[T_RECORDS] += count
    return OK


@njit(cache=True, nogil=True, inline="always")
def _copy_field(buf, q, end, data, offsets, valid, k, filled):
    """Reads one nullable length-prefixed field into (data, offsets, valid) slot ``k``."""
    size, q = _varint32(buf, q, end)
    if q < 0 or size > end - q:
        return -1, filled
    if size > 0:
        data[filled : filled + size] = buf[q : q + size]
        filled += size
        q += size
    valid[k] = 1 if size >= 0 else 0
    offsets[k + 1] = filled
    return q, filled


@njit(cache=True, nogil=True)
def fill(
    buf,
    starts,
    ends,
    counts,
    base_offsets,
    base_timestamps,
    max_timestamps,
    log_append,
    cursor,
    out_offsets,
    out_timestamps,
    key_offsets,
    key_valid,
    key_data,
    value_offsets,
    value_valid,
    value_data,
    header_offsets,
    hkey_offsets,
    hkey_data,
    hvalue_offsets,
    hvalue_valid,
    hvalue_data,
):
    """Decodes sections that ``scan`` accepted into flat Arrow-shaped arrays.

    ``cursor`` (int64[6]: records, headers, then bytes written to key, value, header-key and
    header-value data) says where to continue, so several buffers can fill the same output;
    offsets arrays have one more slot than values and their slot 0 must already be 0.
    Reads stay bounds-checked, but the structure is trusted: call only after ``scan``
    returned OK for the same bytes. Returns the number of records decoded, or -1.
    """
    r = cursor[0]
    h = cursor[1]
    kb = cursor[2]
    vb = cursor[3]
    hkb = cursor[4]
    hvb = cursor[5]
    first = r
    for s in range(starts.shape[0]):
        p = starts[s]
        end = ends[s]
        for _ in range(counts[s]):
            length, q = _varint32(buf, p, end)
            if q < 0:
                return -1
            rec_end = min(q + length, end)
            q += 1  # attributes
            ts_delta, q = _varint(buf, q, rec_end, 10)
            if q < 0:
                return -1
            delta, q = _varint32(buf, q, rec_end)
            if q < 0:
                return -1
            out_offsets[r] = base_offsets[s] + delta
            if log_append[s]:
                out_timestamps[r] = max_timestamps[s]
            else:
                out_timestamps[r] = base_timestamps[s] + ts_delta
            q, kb = _copy_field(buf, q, rec_end, key_data, key_offsets, key_valid, r, kb)
            if q < 0:
                return -1
            q, vb = _copy_field(buf, q, rec_end, value_data, value_offsets, value_valid, r, vb)
            if q < 0:
                return -1
            n_headers, q = _varint32(buf, q, rec_end)
            if q < 0:
                return -1
            for _h in range(n_headers):
                size, q = _varint32(buf, q, rec_end)
                if q < 0 or size < 0 or size > rec_end - q:
                    return -1
                hkey_data[hkb : hkb + size] = buf[q : q + size]
                hkb += size
                hkey_offsets[h + 1] = hkb
                q += size
                q, hvb = _copy_field(
                    buf, q, rec_end, hvalue_data, hvalue_offsets, hvalue_valid, h, hvb
                )
                if q < 0:
                    return -1
                h += 1
            header_offsets[r + 1] = h
            r += 1
            p = rec_end
    cursor[0] = r
    cursor[1] = h
    cursor[2] = kb
    cursor[3] = vb
    cursor[4] = hkb
    cursor[5] = hvb
    return r - first


@njit(cache=True, nogil=True, inline="always")
def _zigzag(n):
    return (n << 1) ^ (n >> 63)


@njit(cache=True, nogil=True, inline="always")
def _varint_size(n):
    u = _zigzag(np.int64(n))
    size = 1
    while u > 0x7F or u < 0:
        u = (u >> 7) & _MASK57
        size += 1
    return size


@njit(cache=True, nogil=True, inline="always")
def _put_varint(out, pos, n):
    u = _zigzag(np.int64(n))
    while u > 0x7F or u < 0:
        out[pos] = (u & 0x7F) | 0x80
        u = (u >> 7) & _MASK57
        pos += 1
    out[pos] = u
    return pos + 1


@njit(cache=True, nogil=True, inline="always")
def _field_size(offsets, valid, k):
    if not valid[k]:
        return 1
    size = offsets[k + 1] - offsets[k]
    return _varint_size(size) + size


@njit(cache=True, nogil=True)
def encoded_sizes(
    ts_deltas,
    key_offsets,
    key_valid,
    value_offsets,
    value_valid,
    header_offsets,
    hkey_offsets,
    hvalue_offsets,
    hvalue_valid,
    body_sizes,
):
    """Fills ``body_sizes`` with each record's size after its length prefix; returns the total.

    Offsets arrays index flat data buffers (``offsets[k]..offsets[k+1]`` is item k) and
    ``header_offsets`` gives each record's range of headers.
    """
    total = 0
    for i in range(ts_deltas.shape[0]):
        size = 1 + _varint_size(ts_deltas[i]) + _varint_size(i)
        size += _field_size(key_offsets, key_valid, i)
        size += _field_size(value_offsets, value_valid, i)
        first = header_offsets[i]
        last = header_offsets[i + 1]
        size += _varint_size(last - first)
        for h in range(first, last):
            key_size = hkey_offsets[h + 1] - hkey_offsets[h]
            size += _varint_size(key_size) + key_size
            size += _field_size(hvalue_offsets, hvalue_valid, h)
        body_sizes[i] = size
        total += _varint_size(size) + size
    return total


@njit(cache=True, nogil=True, inline="always")
def _put_field(out, pos, data, offsets, valid, k):
    if not valid[k]:
        out[pos] = 1  # zigzag(-1): null
        return pos + 1
    start = offsets[k]
    size = offsets[k + 1] - start
    pos = _put_varint(out, pos, size)
    out[pos : pos + size] = data[start : start + size]
    return pos + size


@njit(cache=True, nogil=True)
def encode(
    out,
    pos,
    body_sizes,
    ts_deltas,
    key_data,
    key_offsets,
    key_valid,
    value_data,
    value_offsets,
    value_valid,
    header_offsets,
    hkey_data,
    hkey_offsets,
    hvalue_data,
    hvalue_offsets,
    hvalue_valid,
):
    """Writes the records (offset delta = index) into ``out`` from ``pos``; returns the end.

    ``out`` must have room for ``encoded_sizes``'s total; sizes come from that pass.
    """
    for i in range(ts_deltas.shape[0]):
        pos = _put_varint(out, pos, body_sizes[i])
        out[pos] = 0  # record attributes: unused
        pos = _put_varint(out, pos + 1, ts_deltas[i])
        pos = _put_varint(out, pos, i)
        pos = _put_field(out, pos, key_data, key_offsets, key_valid, i)
        pos = _put_field(out, pos, value_data, value_offsets, value_valid, i)
        first = header_offsets[i]
        last = header_offsets[i + 1]
        pos = _put_varint(out, pos, last - first)
        for h in range(first, last):
            start = hkey_offsets[h]
            size = hkey_offsets[h + 1] - start
            pos = _put_varint(out, pos, size)
            out[pos : pos + size] = hkey_data[start : start + size]
            pos += size
            pos = _put_field(out, pos, hvalue_data, hvalue_offsets, hvalue_valid, h)
    return pos
