"""Consumer-group resources: list, describe with lag, reset offsets, delete.

Every call but the listing must reach the group's coordinator; on another agent it answers 503
NOT_COORDINATOR with ``leader_address`` naming the agent's gRPC address (where ``streamctl``
and the client go; its HTTP port is that agent's own setting).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from streamhouse.broker.groups.errors import GroupIdNotFoundError
from streamhouse.broker.service import OffsetResetSpec
from streamhouse.broker.service.groups import GroupDetails
from streamhouse.workbench.http.errors import API_PREFIX, ERROR_RESPONSES, ServiceRoute
from streamhouse.workbench.http.services import Groups

router = APIRouter(
    prefix=f"{API_PREFIX}/groups",
    tags=["groups"],
    route_class=ServiceRoute,
    responses=ERROR_RESPONSES,
)


class GroupSummary(BaseModel):
    group: str
    state: str
    protocol_type: str
    members: int


class GroupList(BaseModel):
    groups: list[GroupSummary]


class GroupMember(BaseModel):
    member_id: str
    client_id: str
    client_host: str
    assignment: dict[str, list[int]] = Field(description="topic -> partitions")


class PartitionLag(BaseModel):
    topic: str
    partition: int
    committed_offset: int = Field(description="-1 when nothing is committed")
    end_offset: int
    lag: int
    member_id: str = Field(description="the member that owns the partition; empty if none")


class GroupDescription(BaseModel):
    group: str
    state: str
    assignor: str
    generation_id: int
    members: list[GroupMember]
    offsets: list[PartitionLag]
    total_lag: int

    @classmethod
    def of(cls, details: GroupDetails) -> GroupDescription:
        described = details.description
        return cls(
            group=described.group,
            state=described.state,
            assignor=described.protocol or "",
            generation_id=described.generation_id,
            members=[
                GroupMember(
                    member_id=m.member_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    assignment=details.assignments.get(m.member_id, {}),
                )
                for m in described.members
            ],
            offsets=[
                PartitionLag(
                    topic=lag.topic,
                    partition=lag.partition,
                    committed_offset=lag.committed_offset,
                    end_offset=lag.end_offset,
                    lag=lag.lag,
                    member_id=lag.member_id,
                )
                for lag in details.lags
            ],
            total_lag=details.total_lag,
        )


class ResetOffsets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str = Field(min_length=1)
    to: Literal["earliest", "latest", "offset", "timestamp"]
    value: int = Field(
        0,
        ge=-(2**63),
        le=2**63 - 1,
        description="the offset (to=offset) or epoch ms (to=timestamp)",
    )
    partitions: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(
        default_factory=list, description="empty: every partition"
    )
    dry_run: bool = Field(False, description="compute the new offsets without committing them")


class OffsetEntry(BaseModel):
    topic: str
    partition: int
    offset: int


class ResetResult(BaseModel):
    group: str
    dry_run: bool
    offsets: list[OffsetEntry]


@router.get("", response_model=GroupList)
async def list_groups(groups: Groups) -> GroupList:
    listed = await groups.coordinator.list_groups()
    return GroupList(
        groups=[
            GroupSummary(
                group=g.group, state=g.state, protocol_type=g.protocol_type, members=g.members
            )
            for g in listed
        ]
    )


@router.get("/{group}", response_model=GroupDescription)
async def describe_group(group: str, groups: Groups) -> GroupDescription:
    await groups.check_coordinator(group)
    details = await groups.describe(group)
    if details.description.state == "Dead" and not details.lags:
        # The coordinator answers Kafka's way (a Dead, empty group); a resource is 404.
        raise GroupIdNotFoundError(f"group {group!r} has no members and no committed offsets")
    return GroupDescription.of(details)


@router.post("/{group}/reset-offsets", response_model=ResetResult)
async def reset_offsets(group: str, body: ResetOffsets, groups: Groups) -> ResetResult:
    await groups.check_coordinator(group)
    offsets = await groups.reset_offsets(
        group,
        body.topic,
        body.partitions,
        OffsetResetSpec(body.to),
        body.value,
        dry_run=body.dry_run,
    )
    return ResetResult(
        group=group,
        dry_run=body.dry_run,
        offsets=[OffsetEntry(topic=t, partition=p, offset=o) for t, p, o in offsets],
    )


@router.delete("/{group}", status_code=204, response_class=Response)
async def delete_group(group: str, groups: Groups) -> Response:
    await groups.check_coordinator(group)
    await groups.coordinator.delete_group(group)
    return Response(status_code=204)
