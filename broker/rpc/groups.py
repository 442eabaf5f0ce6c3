"""The Groups service: membership with server-side assignment, offsets, lag, resets.

Every call except FindCoordinator and ListGroups must reach the group's coordinator; elsewhere
it fails with UNAVAILABLE / NOT_COORDINATOR naming the agent to ask.
"""

from __future__ import annotations

import grpc
from streamhouse.broker.groups.errors import RebalanceInProgressError
from streamhouse.broker.metadata import InvalidRequestError, UnknownTopicError
from streamhouse.broker.rpc.calls import unary
from streamhouse.broker.rpc.v1 import broker_pb2 as pb
from streamhouse.broker.rpc.v1 import broker_pb2_grpc
from streamhouse.broker.service import GroupService, OffsetResetSpec

Context = grpc.aio.ServicerContext

DEFAULT_SESSION_TIMEOUT_MS = 10_000
DEFAULT_REBALANCE_TIMEOUT_MS = 30_000
RESET_TO = {
    pb.ResetOffsetsRequest.TO_EARLIEST: OffsetResetSpec.EARLIEST,
    pb.ResetOffsetsRequest.TO_LATEST: OffsetResetSpec.LATEST,
    pb.ResetOffsetsRequest.TO_OFFSET: OffsetResetSpec.OFFSET,
    pb.ResetOffsetsRequest.TO_TIMESTAMP: OffsetResetSpec.TIMESTAMP,
}


def _topic_partitions(parts: dict[str, list[int]]) -> list[pb.TopicPartitions]:
    return [pb.TopicPartitions(topic=t, partitions=sorted(p)) for t, p in sorted(parts.items())]


class GroupsServicer(broker_pb2_grpc.GroupsServicer):
    def __init__(self, groups: GroupService) -> None:
        self.groups = groups
        self.coordinator = groups.coordinator

    @unary("find_coordinator")
    async def FindCoordinator(self, request: pb.FindCoordinatorRequest, context: Context):
        if not request.group:
            raise InvalidRequestError("a group id must not be empty")
        agent_id, address = await self.groups.coordinator_address(request.group)
        return pb.FindCoordinatorResponse(agent_id=agent_id, address=address)

    @unary("join_group")
    async def JoinGroup(self, request: pb.JoinGroupRequest, context: Context):
        await self.groups.check_coordinator(request.group)
        if not request.topics:
            raise InvalidRequestError("a member must subscribe to at least one topic")

        async def partitions_for(topic: str) -> int:
            try:
                return (await self.groups.broker.topic(topic)).partitions
            except UnknownTopicError:
                return 0

        joined = await self.coordinator.join_with_assignment(
            request.group,
            request.member_id,
            client_id=request.client_id or "grpc",
            client_host=context.peer() or "",
            topics=list(request.topics),
            assignor=request.assignor or "range",
            owned=[(tp.topic, p) for tp in request.owned for p in tp.partitions],
            session_timeout_ms=request.session_timeout_ms or DEFAULT_SESSION_TIMEOUT_MS,
            rebalance_timeout_ms=request.rebalance_timeout_ms or DEFAULT_REBALANCE_TIMEOUT_MS,
            partitions_for=partitions_for,
        )
        return pb.JoinGroupResponse(
            member_id=joined.member_id,
            generation_id=joined.generation_id,
            leader_id=joined.leader_id,
            assignor=joined.assignor,
            assignment=_topic_partitions(joined.assignment),
            members=list(joined.members),
        )

    @unary("heartbeat")
    async def Heartbeat(self, request: pb.HeartbeatRequest, context: Context):
        await self.groups.check_coordinator(request.group)
        try:
            await self.coordinator.heartbeat(
                request.group, request.member_id, request.generation_id
            )
        except RebalanceInProgressError:
            return pb.HeartbeatResponse(rebalance_in_progress=True)
        return pb.HeartbeatResponse()

    @unary("leave_group")
    async def LeaveGroup(self, request: pb.LeaveGroupRequest, context: Context):
        await self.groups.check_coordinator(request.group)
        await self.coordinator.leave(request.group, request.member_id)
        return pb.LeaveGroupResponse()

    @unary("commit_offsets")
    async def CommitOffsets(self, request: pb.CommitOffsetsRequest, context: Context):
        await self.groups.check_coordinator(request.group)
        for entry in request.offsets:
            if entry.offset < 0:
                raise InvalidRequestError(
                    f"offset {entry.offset} of {entry.topic}[{entry.partition}] is negative"
                )
        await self.groups.commit(
            request.group,
            request.member_id,
            request.generation_id,
            [(e.topic, e.partition, e.offset, e.metadata) for e in request.offsets],
        )
        return pb.CommitOffsetsResponse()

    @unary("fetch_offsets")
    async def FetchOffsets(self, request: pb.FetchOffsetsRequest, context: Context):
        await self.groups.check_coordinator(request.group)
        offsets = await self.coordinator.fetch_offsets(request.group, request.topic or None)
        return pb.FetchOffsetsResponse(
            offsets=[
                pb.OffsetEntry(
                    topic=o.topic, partition=o.partition, offset=o.offset, metadata=o.metadata
                )
                for o in offsets
            ]
        )

    @unary("list_groups")
    async def ListGroups(self, request: pb.ListGroupsRequest, context: Context):
        groups = await self.coordinator.list_groups()
        return pb.ListGroupsResponse(
            groups=[
                pb.GroupSummary(group=g.group, state=g.state, members=g.members) for g in groups
            ]
        )

    @unary("describe_group")
    async def DescribeGroup(self, request: pb.DescribeGroupRequest, context: Context):
        await self.groups.check_coordinator(request.group)
        details = await self.groups.describe(request.group)
        description = details.description
        return pb.DescribeGroupResponse(
            group=description.group,
            state=description.state,
            assignor=description.protocol or "",
            generation_id=description.generation_id,
            members=[
                pb.GroupMember(
                    member_id=m.member_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    assignment=_topic_partitions(details.assignments.get(m.member_id, {})),
                )
                for m in description.members
            ],
            offsets=[
                pb.PartitionLag(
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

    @unary("reset_offsets")
    async def ResetOffsets(self, request: pb.ResetOffsetsRequest, context: Context):
        await self.groups.check_coordinator(request.group)
        if request.to not in RESET_TO:
            raise InvalidRequestError(f"unknown reset target {request.to}")
        offsets = await self.groups.reset_offsets(
            request.group,
            request.topic,
            list(request.partitions),
            RESET_TO[request.to],
            request.value,
            dry_run=request.dry_run,
        )
        return pb.ResetOffsetsResponse(
            offsets=[pb.OffsetEntry(topic=t, partition=p, offset=o) for t, p, o in offsets]
        )

    @unary("delete_group")
    async def DeleteGroup(self, request: pb.DeleteGroupRequest, context: Context):
        await self.groups.check_coordinator(request.group)
        await self.coordinator.delete_group(request.group)
        return pb.DeleteGroupResponse()
