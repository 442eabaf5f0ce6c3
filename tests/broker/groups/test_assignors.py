"""Assignors: Kafka's range/roundrobin results, and sticky's balance and stickiness."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.protocol.consumer.metadata import ConsumerProtocolSubscription
from streamhouse.broker.groups import ASSIGNORS, Subscription, assign


def subs(**topics: list[str]) -> dict[str, Subscription]:
    return {member: Subscription(t) for member, t in topics.items()}


def owned_by(plan: dict[str, dict[str, list[int]]]) -> dict[tuple[str, int], str]:
    return {(t, p): m for m, parts in plan.items() for t, ps in parts.items() for p in ps}


def test_range_gives_consecutive_ranges_with_the_extras_to_the_first_members() -> None:
    plan = assign("range", subs(c=["t"], a=["t"], b=["t"]), {"t": 7})
    assert plan == {"a": {"t": [0, 1, 2]}, "b": {"t": [3, 4]}, "c": {"t": [5, 6]}}


def test_range_works_per_topic() -> None:
    plan = assign("range", subs(a=["x", "y"], b=["y"]), {"x": 2, "y": 3})
    assert plan == {"a": {"x": [0, 1], "y": [0, 1]}, "b": {"y": [2]}}


def test_roundrobin_deals_sorted_partitions_skipping_unsubscribed_members() -> None:
    plan = assign("roundrobin", subs(a=["x", "y"], b=["y"], c=["x", "y"]), {"x": 2, "y": 3})
    assert plan == {"a": {"x": [0], "y": [0]}, "b": {"y": [1]}, "c": {"x": [1], "y": [2]}}


@pytest.mark.parametrize("strategy", ASSIGNORS)
def test_every_member_appears_and_unknown_topics_are_ignored(strategy: str) -> None:
    plan = assign(strategy, subs(a=["t"], b=["t"], c=["ghost"]), {"t": 1, "empty": 0})
    assert sorted(plan) == ["a", "b", "c"]
    assert plan["c"] == {}
    assert sum(len(p.get("t", [])) for p in plan.values()) == 1


def test_unknown_strategy_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="range, roundrobin, sticky"):
        assign("cooperative-sticky", subs(a=["t"]), {"t": 1})


@pytest.mark.parametrize("count", [-1, 1.5, "3", True])
def test_bad_partition_counts_are_refused(count: object) -> None:
    with pytest.raises(ValueError, match="partition count"):
        assign("range", subs(a=["t"]), {"t": count})  # type: ignore[dict-item]


def test_sticky_keeps_owned_partitions_and_gives_a_newcomer_only_the_surplus() -> None:
    before = {
        "a": Subscription(["t"], owned=[("t", 0), ("t", 2), ("t", 4)]),
        "b": Subscription(["t"], owned=[("t", 1), ("t", 3), ("t", 5)]),
        "c": Subscription(["t"]),
    }
    plan = assign("sticky", before, {"t": 6})
    assert [len(plan[m]["t"]) for m in "abc"] == [2, 2, 2]
    assert set(plan["a"]["t"]) <= {0, 2, 4} and set(plan["b"]["t"]) <= {1, 3, 5}


def test_sticky_resolves_double_claims_by_generation() -> None:
    claims = {
        "a": Subscription(["t"], owned=[("t", 0)], generation_id=3),
        "b": Subscription(["t"], owned=[("t", 0)], generation_id=4),
    }
    assert assign("sticky", claims, {"t": 2}) == {"a": {"t": [1]}, "b": {"t": [0]}}


def test_sticky_drops_owned_partitions_that_are_no_longer_valid() -> None:
    claims = {
        "a": Subscription(["t"], owned=[("t", 5), ("gone", 0), ("u", 0)]),
        "b": Subscription(["t"]),
    }
    plan = assign("sticky", claims, {"t": 2, "u": 1})
    assert owned_by(plan).keys() == {("t", 0), ("t", 1)}


# ----------------------------------------------------------- kafka-python as an oracle
@dataclass
class _Cluster:
    counts: dict[str, int]

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(range(self.counts[topic])) if topic in self.counts else None


@dataclass
class _Member:
    member_id: str
    group_instance_id: None
    metadata: ConsumerProtocolSubscription


member_ids = st.lists(st.text("abcdef0123", min_size=1, max_size=6), min_size=1, max_size=6)
topics = st.sampled_from(["t0", "t1", "t2", "t3"])


@st.composite
def groups(draw: st.DrawFn) -> tuple[dict[str, Subscription], dict[str, int]]:
    members = draw(member_ids.map(lambda ids: sorted(set(ids))))
    counts = draw(st.dictionaries(topics, st.integers(1, 12), min_size=1))
    subscriptions = {
        m: Subscription(sorted(draw(st.sets(topics, min_size=1, max_size=3)))) for m in members
    }
    return subscriptions, counts


@pytest.mark.parametrize(
    ("strategy", "oracle"),
    [("range", RangePartitionAssignor), ("roundrobin", RoundRobinPartitionAssignor)],
)
@given(group=groups())
@settings(max_examples=150, deadline=None)
def test_range_and_roundrobin_agree_with_kafka_python(
    strategy: str, oracle: type, group: tuple[dict[str, Subscription], dict[str, int]]
) -> None:
    subscriptions, counts = group
    if strategy == "roundrobin":
        # kafka-python's roundrobin crashes when members subscribe to different topics (its
        # skip loop mixes tuples and ids), so it can only vouch for equal subscriptions.
        first = next(iter(subscriptions.values()))
        subscriptions = {m: first for m in subscriptions}
    # kafka-python expects every subscribed topic to exist, so only offer known ones.
    known = {
        m: Subscription([t for t in s.topics if t in counts]) for m, s in subscriptions.items()
    }
    theirs = oracle.assign(
        _Cluster(counts),
        [
            _Member(m, None, ConsumerProtocolSubscription(0, s.topics, b""))
            for m, s in known.items()
        ],
    )
    expected = {
        m: {topic: sorted(parts) for topic, parts in a.assigned_partitions if parts}
        for m, a in theirs.items()
    }
    assert assign(strategy, subscriptions, counts) == expected


# ------------------------------------------------------------------- properties
@pytest.mark.parametrize("strategy", ASSIGNORS)
@given(group=groups())
@settings(max_examples=150, deadline=None)
def test_every_subscribed_partition_goes_to_exactly_one_subscriber(
    strategy: str, group: tuple[dict[str, Subscription], dict[str, int]]
) -> None:
    subscriptions, counts = group
    plan = assign(strategy, subscriptions, counts)
    assert sorted(plan) == sorted(subscriptions)
    flat = [(t, p, m) for m, parts in plan.items() for t, ps in parts.items() for p in ps]
    assert len(flat) == len({(t, p) for t, p, _ in flat}), "a partition was assigned twice"
    wanted = {
        (t, p) for s in subscriptions.values() for t in s.topics for p in range(counts.get(t, 0))
    }
    assert {(t, p) for t, p, _ in flat} == wanted
    assert all(t in subscriptions[m].topics for t, _, m in flat)
    assert all(ps == sorted(ps) for parts in plan.values() for ps in parts.values())


def _loads(plan: dict[str, dict[str, list[int]]]) -> dict[str, int]:
    return {m: sum(len(ps) for ps in parts.values()) for m, parts in plan.items()}


def _with_owned(plan: dict[str, dict[str, list[int]]], subscriptions: dict[str, Subscription]):
    return {
        m: Subscription(
            subscriptions[m].topics, owned=[(t, p) for t, ps in plan[m].items() for p in ps]
        )
        for m in subscriptions
    }


@given(group=groups())
@settings(max_examples=150, deadline=None)
def test_sticky_balances_members_with_equal_subscriptions(
    group: tuple[dict[str, Subscription], dict[str, int]],
) -> None:
    subscriptions, counts = group
    plan = assign("sticky", subscriptions, counts)
    loads = _loads(plan)
    by_topics: dict[tuple[str, ...], list[int]] = {}
    for member, sub in subscriptions.items():
        by_topics.setdefault(tuple(sorted(sub.topics)), []).append(loads[member])
    for same in by_topics.values():
        assert max(same) - min(same) <= 1


@given(group=groups(), data=st.data())
@settings(max_examples=150, deadline=None)
def test_sticky_moves_only_the_leaving_members_partitions(
    group: tuple[dict[str, Subscription], dict[str, int]], data: st.DataObject
) -> None:
    subscriptions, counts = group
    same = {m: Subscription(["t0", "t1"]) for m in subscriptions}  # stickiness is exact here
    counts = {"t0": counts.get("t0", 3), "t1": counts.get("t1", 4)}
    first = assign("sticky", same, counts)
    assert assign("sticky", _with_owned(first, same), counts) == first  # nothing changed
    if len(same) < 2:
        return
    leaver = data.draw(st.sampled_from(sorted(same)))
    rest = {m: s for m, s in _with_owned(first, same).items() if m != leaver}
    second = assign("sticky", rest, counts)
    before, after = owned_by(first), owned_by(second)
    moved = {tp for tp in after if before[tp] != after[tp]}
    assert all(before[tp] == leaver for tp in moved)
    loads = _loads(second).values()
    assert max(loads) - min(loads) <= 1


@given(group=groups())
@settings(max_examples=100, deadline=None)
def test_sticky_is_deterministic_whatever_the_input_order(
    group: tuple[dict[str, Subscription], dict[str, int]],
) -> None:
    subscriptions, counts = group
    reordered = dict(reversed(list(subscriptions.items())))
    assert assign("sticky", subscriptions, counts) == assign("sticky", reordered, counts)


@given(group=groups(), data=st.data())
@settings(max_examples=150, deadline=None)
def test_sticky_balances_whatever_members_claim_to_own(
    group: tuple[dict[str, Subscription], dict[str, int]], data: st.DataObject
) -> None:
    """Claims may be lopsided, stale, duplicated or invalid; balance wins over stickiness."""
    subscriptions, counts = group
    every = sorted({(t, p) for t, n in counts.items() for p in range(n + 1)} | {("gone", 0)})
    claimed = {
        m: Subscription(s.topics, owned=data.draw(st.lists(st.sampled_from(every), max_size=12)))
        for m, s in subscriptions.items()
    }
    plan = assign("sticky", claimed, counts)
    assert owned_by(plan).keys() == {
        (t, p) for s in subscriptions.values() for t in s.topics for p in range(counts.get(t, 0))
    }
    loads = _loads(plan)
    by_topics: dict[tuple[str, ...], list[int]] = {}
    for member, sub in subscriptions.items():
        by_topics.setdefault(tuple(sorted(sub.topics)), []).append(loads[member])
    for same in by_topics.values():
        assert max(same) - min(same) <= 1
