"""What the coordinator answers with; plain values both front doors translate for their wire."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class JoinResult:
    """A completed join: the generation, the chosen protocol, and who leads.

    ``members`` is filled only for the leader, who must compute everyone's assignment:
    ``(member_id, group_instance_id, metadata of the chosen protocol)``.
    """

    member_id: str
    generation_id: int
    protocol_name: str
    leader_id: str
    members: list[tuple[str, str | None, bytes]] = field(default_factory=list)
    protocol_type: str = ""

    @property
    def is_leader(self) -> bool:
        return self.member_id == self.leader_id


@dataclass(frozen=True)
class GroupSummary:
    group: str
    state: str
    protocol_type: str
    members: int


@dataclass(frozen=True)
class MemberDescription:
    """``metadata`` and ``assignment`` are filled only while the group is Stable (as in Kafka):
    in between, the old assignment is no longer true and the new one is not known yet."""

    member_id: str
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes
    group_instance_id: str | None = None


@dataclass(frozen=True)
class GroupDescription:
    group: str
    state: str
    protocol_type: str
    protocol: str
    generation_id: int
    members: list[MemberDescription]


@dataclass(frozen=True)
class AssignedMember:
    """The outcome of a server-side-assigned join: this member's partitions in the generation."""

    member_id: str
    generation_id: int
    leader_id: str
    assignor: str
    assignment: dict[str, list[int]]
    members: list[str]
