"""PartitionIndex: offset and time lookups, contiguity, truncation and retention decisions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamhouse.broker.metadata import PartitionIndex, SegmentRecord


def seg(base: int, count: int, *, max_ts: int = 1_000, size: int = 100) -> SegmentRecord:
    return SegmentRecord(
        topic="t",
        partition=0,
        base_offset=base,
        last_offset=base + count - 1,
        record_count=count,
        min_timestamp=0,
        max_timestamp=max_ts,
        size_bytes=size,
        object_key=f"k{base}",
        writer_epoch=1,
    )


def test_empty_index() -> None:
    index = PartitionIndex()
    assert len(index) == 0 and list(index) == []
    assert index.start_offset is None and index.end_offset is None
    assert index.total_bytes == 0
    assert index.find(0) is None
    assert index.find_by_timestamp(0) is None
    assert index.truncate_before(10) == []
    assert index.expired(10**12, 0, 0) == []


def test_find_at_the_boundaries() -> None:
    a, b, c = seg(100, 10), seg(110, 1), seg(111, 89)
    index = PartitionIndex([c, a, b])  # any order in, offset order inside
    assert list(index) == [a, b, c]
    assert (index.start_offset, index.end_offset, len(index)) == (100, 200, 3)
    assert index.total_bytes == 300
    assert index.find(99) is None
    assert index.find(100) is a
    assert index.find(109) is a
    assert index.find(110) is b
    assert index.find(111) is c
    assert index.find(199) is c
    assert index.find(200) is None
    assert index.find(-1) is None


def test_gaps_and_overlaps_are_rejected() -> None:
    index = PartitionIndex([seg(0, 10)])
    with pytest.raises(ValueError, match="gap"):
        index.add(seg(11, 5))
    with pytest.raises(ValueError, match="overlap"):
        index.add(seg(9, 5))
    with pytest.raises(ValueError, match="last_offset"):
        index.add(SegmentRecord("t", 0, 10, 9, 1, 0, 0, 1, "bad", 1))
    assert index.end_offset == 10 and len(index) == 1 and index.total_bytes == 100
    with pytest.raises(ValueError, match="gap"):
        PartitionIndex([seg(0, 10), seg(20, 5)])
    index.add(seg(10, 1))
    assert index.end_offset == 11


def test_find_by_timestamp_with_out_of_order_times() -> None:
    # Producers may send older timestamps later: segment 2's newest record is older than
    # segment 1's. The first segment reaching a time is what ListOffsets needs.
    s1, s2, s3 = seg(0, 10, max_ts=500), seg(10, 10, max_ts=300), seg(20, 10, max_ts=900)
    index = PartitionIndex([s1, s2, s3])
    assert index.find_by_timestamp(0) is s1
    assert index.find_by_timestamp(500) is s1
    assert index.find_by_timestamp(501) is s3
    assert index.find_by_timestamp(900) is s3
    assert index.find_by_timestamp(901) is None


def test_truncate_before_drops_only_whole_segments() -> None:
    s1, s2, s3 = seg(0, 10, max_ts=900), seg(10, 10, max_ts=100), seg(20, 10, max_ts=200)
    index = PartitionIndex([s1, s2, s3])
    assert index.truncate_before(5) == []
    assert index.truncate_before(15) == [s1]  # s2 straddles 15 and stays
    assert list(index) == [s2, s3] and index.start_offset == 10 and index.total_bytes == 200
    assert index.find(5) is None and index.find(12) is s2
    # The running time maximum forgets the dropped segment's late timestamp.
    assert index.find_by_timestamp(150) is s3
    assert index.truncate_before(10**9) == [s2, s3]
    assert len(index) == 0 and index.end_offset is None
    index.add(seg(500, 1))  # an emptied index accepts any start
    assert index.start_offset == 500


def test_expired_by_time_is_an_oldest_first_prefix() -> None:
    now = 10_000
    segments = [seg(0, 5, max_ts=1_000), seg(5, 5, max_ts=2_000), seg(10, 5, max_ts=1_500)]
    segments.append(seg(15, 5, max_ts=9_000))
    index = PartitionIndex(segments)
    assert index.expired(now, retention_ms=-1, retention_bytes=-1) == []
    assert index.expired(now, retention_ms=8_500, retention_bytes=-1) == segments[:1]
    assert index.expired(now, retention_ms=8_000, retention_bytes=-1) == segments[:1]
    # 7_999 ms: segments 0..2 are all older than 2_001; 3 is fresh.
    assert index.expired(now, retention_ms=7_999, retention_bytes=-1) == segments[:3]
    # The newest segment goes too once it is past retention (the open one is not indexed).
    assert index.expired(now, retention_ms=0, retention_bytes=-1) == segments
    assert len(index) == 4  # expired() only reports


def test_expired_by_size_keeps_at_most_retention_bytes() -> None:
    segments = [seg(i * 10, 10, size=100) for i in range(4)]
    index = PartitionIndex(segments)
    assert index.expired(0, -1, retention_bytes=400) == []
    assert index.expired(0, -1, retention_bytes=399) == segments[:1]
    assert index.expired(0, -1, retention_bytes=250) == segments[:2]
    assert index.expired(0, -1, retention_bytes=0) == segments
    # Either rule suffices: the longer prefix wins.
    old = [seg(0, 1, max_ts=0, size=10), seg(1, 1, max_ts=0, size=10)]
    both = PartitionIndex([*old, seg(2, 1, max_ts=10**9, size=1_000)])
    assert both.expired(10**6, retention_ms=1_000, retention_bytes=-1) == old
    assert both.expired(10**6, retention_ms=1_000, retention_bytes=1_005) == old
    assert len(both.expired(10**6, retention_ms=-1, retention_bytes=999)) == 3


segment_lists = st.lists(
    st.tuples(st.integers(1, 50), st.integers(-5, 200), st.integers(1, 500)), max_size=25
)


def build(start: int, specs: list[tuple[int, int, int]]) -> list[SegmentRecord]:
    out, base = [], start
    for count, max_ts, size in specs:
        out.append(seg(base, count, max_ts=max_ts, size=size))
        base += count
    return out


@settings(max_examples=150, deadline=None)
@given(
    start=st.integers(0, 1_000),
    specs=segment_lists,
    probes=st.lists(st.integers(-10, 2_500), max_size=30),
    truncate_at=st.integers(0, 2_500),
)
def test_lookups_agree_with_a_linear_search(start, specs, probes, truncate_at) -> None:
    segments = build(start, specs)
    index = PartitionIndex(segments)
    for probe in probes:
        naive = next((s for s in segments if s.base_offset <= probe <= s.last_offset), None)
        assert index.find(probe) == naive
        by_time = next((s for s in segments if s.max_timestamp >= probe), None)
        assert index.find_by_timestamp(probe) == by_time

    dropped = index.truncate_before(truncate_at)
    assert dropped == [s for s in segments if s.last_offset < truncate_at]
    kept = [s for s in segments if s.last_offset >= truncate_at]
    assert list(index) == kept
    assert index.total_bytes == sum(s.size_bytes for s in kept)
    for probe in probes:
        assert index.find_by_timestamp(probe) == next(
            (s for s in kept if s.max_timestamp >= probe), None
        )


@settings(max_examples=150, deadline=None)
@given(
    specs=segment_lists,
    now=st.integers(0, 300),
    retention_ms=st.integers(-1, 300),
    retention_bytes=st.integers(-1, 5_000),
)
def test_expired_agrees_with_the_naive_rules(specs, now, retention_ms, retention_bytes) -> None:
    segments = build(0, specs)
    by_time = 0
    if retention_ms >= 0:
        while by_time < len(segments) and segments[by_time].max_timestamp < now - retention_ms:
            by_time += 1
    by_size = 0
    if retention_bytes >= 0:
        while sum(s.size_bytes for s in segments[by_size:]) > retention_bytes:
            by_size += 1
    expected = segments[: max(by_time, by_size)]
    assert PartitionIndex(segments).expired(now, retention_ms, retention_bytes) == expected
