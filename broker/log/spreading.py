"""Which partitions an agent should claim or hand over, so that live agents share the work.

Every agent runs the same pure computation on the same view (the leases table, the live
agents, the store clock) and acts only for itself: it claims free partitions while it holds
less than its fair share and hands one partition over when it holds more than its share and
another agent holds less. A fair share is ``ceil(partitions / live agents)`` of each topic:
spreading every topic spreads its load (a total-only share can leave one busy topic on one
agent), and the totals then differ by at most one partition per topic.

Hysteresis against ping-pong: a hand-over needs the giver strictly above a share and the taker
strictly below it, so after the move neither crosses the share in the other direction. A
partition nobody claimed for a whole lease TTL after it became free goes to whoever sees it,
whatever the shares say, so every partition always gets a leader.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from streamhouse.broker.metadata import Lease, Topic

PartitionKey = tuple[str, int]


@dataclass(frozen=True)
class ClusterView:
    """What one agent knows when it plans: all at the store's clock ``now_ms``."""

    agent_id: str
    topics: Mapping[str, Topic]
    leases: Mapping[PartitionKey, Lease]
    alive: frozenset[str]
    now_ms: int
    ttl_ms: int

    def holder(self, key: PartitionKey) -> str | None:
        """The live lease holder of a partition, None when it is free."""
        lease = self.leases.get(key)
        return lease.holder if lease is not None and lease.expires_at > self.now_ms else None

    def free_since(self, key: PartitionKey) -> int:
        """Since when a free partition has had no leader (its topic's creation if never)."""
        lease = self.leases.get(key)
        return lease.expires_at if lease is not None else self.topics[key[0]].created_at


@dataclass(frozen=True)
class Claim:
    topic: str
    partition: int
    reason: str  # for metrics.LEASE_CHANGES: acquired or expired_taken


@dataclass(frozen=True)
class SpreadPlan:
    claims: list[Claim]
    hand_over: PartitionKey | None


class Shares:
    """Fair shares and current holdings (live leases) per agent, in total and per topic."""

    def __init__(self, view: ClusterView) -> None:
        self.agents = view.alive | {view.agent_id}
        count = len(self.agents)
        self.total_share = math.ceil(sum(t.partitions for t in view.topics.values()) / count)
        self.topic_share = {
            name: math.ceil(topic.partitions / count) for name, topic in view.topics.items()
        }
        self.total: collections.Counter[str] = collections.Counter()
        self.per_topic: collections.Counter[tuple[str, str]] = collections.Counter()
        for key in all_partitions(view.topics):
            holder = view.holder(key)
            if holder is not None:
                self.take(holder, key[0])

    def take(self, agent: str, topic: str) -> None:
        self.total[agent] += 1
        self.per_topic[(agent, topic)] += 1

    def below(self, agent: str, topic: str) -> bool:
        """True when ``agent`` may take one more partition of ``topic``."""
        return self.per_topic[(agent, topic)] < self.topic_share[topic]


def all_partitions(topics: Mapping[str, Topic]) -> Iterable[PartitionKey]:
    for name in sorted(topics):
        for partition in range(topics[name].partitions):
            yield name, partition


def plan_spread(view: ClusterView, local: Iterable[PartitionKey] = ()) -> SpreadPlan:
    """The claims and the (at most one) hand-over this agent should make now.

    ``local`` are the partitions this agent leads and may hand over; claims assume they all
    succeed, which only errs towards claiming less (a lost race shows up in the next round).
    """
    me = view.agent_id
    shares = Shares(view)
    claims: list[Claim] = []
    for key in all_partitions(view.topics):
        if view.holder(key) is not None:
            continue
        long_free = view.now_ms - view.free_since(key) > view.ttl_ms
        if shares.below(me, key[0]) or long_free:
            shares.take(me, key[0])
            claims.append(Claim(key[0], key[1], _claim_reason(view, key)))
    return SpreadPlan(claims, _hand_over(view, shares, local))


def _claim_reason(view: ClusterView, key: PartitionKey) -> str:
    lease = view.leases.get(key)
    taken = lease is not None and lease.holder != view.agent_id and lease.holder not in view.alive
    return "expired_taken" if taken else "acquired"


def _hand_over(
    view: ClusterView, shares: Shares, local: Iterable[PartitionKey]
) -> PartitionKey | None:
    """The highest partition (topic, then number) this agent should give away, if any.

    Only partitions of a topic this agent holds more than its share of are given, and only when
    another agent would claim exactly that partition.
    """
    me = view.agent_id
    mine = sorted((k for k in local if view.holder(k) == me), reverse=True)
    takers = [agent for agent in shares.agents if agent != me]

    def has_taker(topic: str) -> bool:
        return any(shares.below(agent, topic) for agent in takers)

    over_topic = [k for k in mine if shares.per_topic[(me, k[0])] > shares.topic_share[k[0]]]
    for key in over_topic:
        if has_taker(key[0]):
            return key
    return None
