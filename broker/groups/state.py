"""One group's membership and generation, without timers or I/O.

The coordinator drives the transitions (Kafka's classic group states); this module only keeps
the bookkeeping that every transition relies on: who is a member, who leads, which protocols
they share, and who is still expected to rejoin.
"""

from __future__ import annotations

import asyncio
import enum
from collections import Counter
from dataclasses import dataclass, field

from streamhouse.broker.groups.models import JoinResult


class GroupState(enum.StrEnum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(eq=False)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    heartbeat_deadline: float = 0.0
    join_waiter: asyncio.Future[JoinResult] | None = None
    sync_waiter: asyncio.Future[bytes] | None = None

    @property
    def awaiting_join(self) -> bool:
        return self.join_waiter is not None and not self.join_waiter.done()

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_waiter is not None and not self.sync_waiter.done()

    def metadata_for(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        return self.protocols == protocols

    def touch(self, now: float) -> None:
        """Restarts the session: the member is alive as of ``now``."""
        self.heartbeat_deadline = now + self.session_timeout_ms / 1000


@dataclass(eq=False)
class Group:
    group_id: str
    state: GroupState = GroupState.EMPTY
    protocol_type: str | None = None
    protocol_name: str | None = None
    generation_id: int = 0
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    # Member ids handed out with MemberIdRequiredError, valid until this loop time.
    pending_members: dict[str, float] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # PreparingRebalance: members that have not rejoined by the deadline are removed; the join
    # phase of a group that was Empty also waits until ``hold_until`` for more members.
    rebalance_deadline: float = 0.0
    hold_until: float | None = None
    timer: asyncio.TimerHandle | None = None

    @property
    def leader(self) -> Member | None:
        return self.members.get(self.leader_id) if self.leader_id else None

    def add(self, member: Member) -> None:
        self.members[member.member_id] = member
        if self.leader_id is None:
            self.leader_id = member.member_id

    def remove(self, member_id: str) -> Member:
        member = self.members.pop(member_id)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        return member

    @property
    def has_history(self) -> bool:
        """Worth listing and describing: it has members or had a generation."""
        return bool(self.members) or self.generation_id > 0

    def is_unused(self) -> bool:
        """Nothing worth remembering: never had a generation and has nobody in it."""
        return (
            not self.members
            and not self.pending_members
            and self.generation_id == 0
            and self.state is GroupState.EMPTY
        )

    def supports(
        self, protocol_type: str, protocols: list[tuple[str, bytes]], member_id: str
    ) -> bool:
        """Whether a (re)joining member can share the group with the others.

        The first member sets the protocol type; later ones must match it and support at least
        one protocol that every other member supports.
        """
        others = [m for m in self.members.values() if m.member_id != member_id]
        if not protocol_type or not protocols:
            return False
        if not others:
            return True
        if protocol_type != self.protocol_type:
            return False
        return bool(self.candidate_protocols(others) & {name for name, _ in protocols})

    @staticmethod
    def candidate_protocols(members: list[Member]) -> set[str]:
        names = [{name for name, _ in m.protocols} for m in members]
        return set.intersection(*names) if names else set()

    def select_protocol(self) -> str:
        """Kafka's vote: each member votes for its first protocol that all support; the most
        votes win, ties going to the one the leader prefers."""
        members = list(self.members.values())
        candidates = self.candidate_protocols(members)
        votes = Counter(
            next(name for name, _ in m.protocols if name in candidates) for m in members
        )
        leader = self.leader or members[0]
        preference = [name for name, _ in leader.protocols if name in candidates]
        return max(preference, key=lambda name: (votes[name], -preference.index(name)))

    def all_joined(self) -> bool:
        return all(m.awaiting_join for m in self.members.values())

    def rebalance_timeout_s(self) -> float:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0) / 1000

    def join_result(self, member: Member) -> JoinResult:
        """The current generation as ``member`` should see it (leader gets the member list)."""
        members = []
        if member.member_id == self.leader_id:
            members = [
                (m.member_id, m.group_instance_id, m.metadata_for(self.protocol_name))
                for m in self.members.values()
            ]
        return JoinResult(
            member_id=member.member_id,
            generation_id=self.generation_id,
            protocol_name=self.protocol_name or "",
            leader_id=self.leader_id or "",
            members=members,
            protocol_type=self.protocol_type or "",
        )
