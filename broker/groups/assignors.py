"""Partition assignors with the semantics of Kafka's range, roundrobin and sticky strategies.

The coordinator runs these itself when it assigns on behalf of a member (gRPC clients), so a
group can mix Kafka clients and gRPC clients as long as they agree on the strategy name. All
three are deterministic: the same subscriptions and partition counts give the same plan, which
keeps a rebalance that changes nothing from moving anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from streamhouse.broker.groups.protocol import Subscription

ASSIGNORS = ("range", "roundrobin", "sticky")

Plan = dict[str, dict[str, list[int]]]  # member id -> topic -> sorted partitions
TopicPartition = tuple[str, int]


def assign(
    strategy: str,
    subscriptions: Mapping[str, Subscription],
    partitions_per_topic: Mapping[str, int],
) -> Plan:
    """Every partition of every subscribed topic goes to exactly one member subscribed to it.

    Topics missing from ``partitions_per_topic`` (or with no partitions) are ignored. Every
    member appears in the result, possibly with ``{}``.

    Raises:
        ValueError: Unknown strategy, or a partition count that is not a non-negative integer.
    """
    assignor = _BY_NAME.get(strategy)
    if assignor is None:
        raise ValueError(
            f"unknown assignment strategy {strategy!r}; use one of {', '.join(ASSIGNORS)}"
        )
    for topic, count in partitions_per_topic.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"partition count of {topic!r} must be an integer >= 0, not {count!r}")
    topics_of = {
        member: {t for t in sub.topics if partitions_per_topic.get(t, 0) > 0}
        for member, sub in subscriptions.items()
    }
    held = assignor(topics_of, partitions_per_topic, subscriptions)
    return {member: _by_topic(held[member]) for member in subscriptions}


def _by_topic(partitions: list[TopicPartition]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for topic, partition in sorted(partitions):
        out.setdefault(topic, []).append(partition)
    return out


def _range(
    topics_of: dict[str, set[str]], counts: Mapping[str, int], _: Mapping[str, Subscription]
) -> dict[str, list[TopicPartition]]:
    """Per topic, members in id order take consecutive ranges; the first ones take one extra."""
    held: dict[str, list[TopicPartition]] = {member: [] for member in topics_of}
    for topic in sorted(set().union(*topics_of.values())):
        members = sorted(m for m, topics in topics_of.items() if topic in topics)
        share, extra = divmod(counts[topic], len(members))
        start = 0
        for index, member in enumerate(members):
            size = share + (1 if index < extra else 0)
            held[member].extend((topic, p) for p in range(start, start + size))
            start += size
    return held


def _roundrobin(
    topics_of: dict[str, set[str]], counts: Mapping[str, int], _: Mapping[str, Subscription]
) -> dict[str, list[TopicPartition]]:
    """All partitions in (topic, partition) order dealt to members in id order, skipping members
    not subscribed to the partition's topic."""
    held: dict[str, list[TopicPartition]] = {member: [] for member in topics_of}
    members = sorted(topics_of)
    turn = 0
    for topic in sorted(set().union(*topics_of.values())):
        for partition in range(counts[topic]):
            while topic not in topics_of[members[turn % len(members)]]:
                turn += 1
            held[members[turn % len(members)]].append((topic, partition))
            turn += 1
    return held


def _sticky(
    topics_of: dict[str, set[str]],
    counts: Mapping[str, int],
    subscriptions: Mapping[str, Subscription],
) -> dict[str, list[TopicPartition]]:
    """Balanced first, then as little movement as possible.

    1. Each member keeps the partitions it owned that are still valid for it; a partition two
       members claim goes to the higher generation, then the smaller member id.
    2. Unowned partitions go, most constrained topic first, to the least loaded eligible member.
    3. While some member holds at least two more than an eligible member, one partition moves
       from the most loaded to the least loaded. Members with equal subscriptions therefore end
       up within one partition of each other, and nothing moves when that already holds.
    """
    members = sorted(topics_of)
    held: dict[str, set[TopicPartition]] = {member: set() for member in members}
    owner: dict[TopicPartition, str] = {}
    for member in sorted(members, key=lambda m: (-subscriptions[m].generation_id, m)):
        for topic, partition in sorted(set(subscriptions[member].owned)):
            key = (topic, partition)
            valid = topic in topics_of[member] and 0 <= partition < counts.get(topic, 0)
            if valid and key not in owner:
                owner[key] = member
                held[member].add(key)

    eligible = {
        topic: [m for m in members if topic in topics_of[m]]
        for topic in set().union(*topics_of.values())
    }
    unowned = [(t, p) for t in eligible for p in range(counts[t]) if (t, p) not in owner]
    unowned.sort(key=lambda tp: (len(eligible[tp[0]]), tp))
    for key in unowned:
        member = min(eligible[key[0]], key=lambda m: (len(held[m]), m))
        held[member].add(key)

    while _move_one(members, held, topics_of):
        pass
    return {member: sorted(parts) for member, parts in held.items()}


def _move_one(
    members: list[str], held: dict[str, set[TopicPartition]], topics_of: dict[str, set[str]]
) -> bool:
    """Moves one partition from a loaded member to one holding two fewer; False when none can.

    Each move lowers the sum of squared loads, so repeating it terminates.
    """
    givers = sorted(members, key=lambda m: (-len(held[m]), m))
    takers = sorted(members, key=lambda m: (len(held[m]), m))
    for giver in givers:
        for taker in takers:
            if len(held[taker]) >= len(held[giver]) - 1:
                break
            movable = [tp for tp in held[giver] if tp[0] in topics_of[taker]]
            if movable:
                key = max(movable)
                held[giver].remove(key)
                held[taker].add(key)
                return True
    return False


_BY_NAME: dict[str, Callable[..., dict[str, list[TopicPartition]]]] = {
    "range": _range,
    "roundrobin": _roundrobin,
    "sticky": _sticky,
}
