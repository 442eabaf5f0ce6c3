"""Consumer groups over the gRPC API of a real server: join, rebalance, commit, lag, reset."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from streamhouse.broker.records import build_batch
from streamhouse.broker.rpc.v1 import broker_pb2 as pb
from streamhouse.broker.rpc.v1 import broker_pb2_grpc as stubs


@pytest.fixture
def api(server):
    channel = grpc.insecure_channel(server.grpc_address)
    yield stubs.AdminStub(channel), stubs.ProduceStub(channel), stubs.GroupsStub(channel)
    channel.close()


def join(groups, member_id: str = "", **kw) -> pb.JoinGroupResponse:
    request = pb.JoinGroupRequest(
        group="g", member_id=member_id, topics=["events"], session_timeout_ms=6000,
        rebalance_timeout_ms=5000, **kw,
    )  # fmt: skip
    return groups.JoinGroup(request, timeout=30)


def owned(reply: pb.JoinGroupResponse) -> set[tuple[str, int]]:
    return {(tp.topic, p) for tp in reply.assignment for p in tp.partitions}


def test_three_members_split_six_partitions_and_rebalance_when_one_leaves(api) -> None:
    admin, _, groups = api
    admin.CreateTopic(pb.CreateTopicRequest(name="events", partitions=6), timeout=30)
    coordinator = groups.FindCoordinator(pb.FindCoordinatorRequest(group="g"), timeout=10)
    assert coordinator.address
    with ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(lambda i: join(groups, client_id=f"c{i}"), range(3)))
    generation = {r.generation_id for r in replies}
    assert len(generation) == 1
    parts = [owned(r) for r in replies]
    assert all(len(p) == 2 for p in parts)
    assert set().union(*parts) == {("events", p) for p in range(6)}
    leaving, *staying = replies
    groups.LeaveGroup(pb.LeaveGroupRequest(group="g", member_id=leaving.member_id), timeout=10)
    for member in staying:
        beat = groups.Heartbeat(
            pb.HeartbeatRequest(
                group="g", member_id=member.member_id, generation_id=member.generation_id
            ),
            timeout=10,
        )
        assert beat.rebalance_in_progress
    with ThreadPoolExecutor(2) as pool:
        rejoined = list(pool.map(lambda m: join(groups, m.member_id), staying))
    assert {r.generation_id for r in rejoined} == {generation.pop() + 1}
    assert [len(owned(r)) for r in rejoined] == [3, 3]
    assert owned(rejoined[0]) | owned(rejoined[1]) == {("events", p) for p in range(6)}
    stale = pb.HeartbeatRequest(group="g", member_id=staying[0].member_id, generation_id=1)
    with pytest.raises(grpc.RpcError) as info:
        groups.Heartbeat(stale, timeout=10)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    described = groups.DescribeGroup(pb.DescribeGroupRequest(group="g"), timeout=10)
    assert described.state == "Stable" and len(described.members) == 2
    listed = groups.ListGroups(pb.ListGroupsRequest(), timeout=10)
    assert [(g.group, g.members) for g in listed.groups] == [("g", 2)]
    with pytest.raises(grpc.RpcError) as info:
        groups.DeleteGroup(pb.DeleteGroupRequest(group="g"), timeout=10)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_commit_lag_and_reset_to_timestamp(api) -> None:
    admin, produce, groups = api
    admin.CreateTopic(pb.CreateTopicRequest(name="events", partitions=1), timeout=30)
    batch = build_batch([b"r%d" % i for i in range(10)], timestamps=[1000 * i for i in range(10)])
    part = pb.PartitionBatches(partition=0, batches=[batch])
    produce.Produce(pb.ProduceRequest(topic="events", partitions=[part]), timeout=30)
    member = join(groups)
    groups.CommitOffsets(
        pb.CommitOffsetsRequest(
            group="g",
            member_id=member.member_id,
            generation_id=member.generation_id,
            offsets=[pb.OffsetEntry(topic="events", partition=0, offset=4)],
        ),
        timeout=10,
    )
    described = groups.DescribeGroup(pb.DescribeGroupRequest(group="g"), timeout=10)
    assert [(o.committed_offset, o.end_offset, o.lag) for o in described.offsets] == [(4, 10, 6)]
    assert described.total_lag == 6
    reset = pb.ResetOffsetsRequest(
        group="g", topic="events", to=pb.ResetOffsetsRequest.TO_TIMESTAMP, value=6500
    )
    with pytest.raises(grpc.RpcError) as info:
        groups.ResetOffsets(reset, timeout=10)  # the group still has a member
    assert dict(info.value.trailing_metadata())["streamhouse-error"] == "GROUP_NOT_EMPTY"
    groups.LeaveGroup(pb.LeaveGroupRequest(group="g", member_id=member.member_id), timeout=10)
    dry = groups.ResetOffsets(
        pb.ResetOffsetsRequest(
            group="g", topic="events", to=pb.ResetOffsetsRequest.TO_TIMESTAMP, value=6500,
            dry_run=True,
        ),
        timeout=10,
    )  # fmt: skip
    assert [(o.partition, o.offset) for o in dry.offsets] == [(0, 7)]
    fetched = groups.FetchOffsets(pb.FetchOffsetsRequest(group="g"), timeout=10)
    assert [o.offset for o in fetched.offsets] == [4]  # a dry run changes nothing
    groups.ResetOffsets(reset, timeout=10)
    fetched = groups.FetchOffsets(pb.FetchOffsetsRequest(group="g"), timeout=10)
    assert [o.offset for o in fetched.offsets] == [7]
    earliest = pb.ResetOffsetsRequest(
        group="g", topic="events", to=pb.ResetOffsetsRequest.TO_EARLIEST
    )
    assert groups.ResetOffsets(earliest, timeout=10).offsets[0].offset == 0
    groups.DeleteGroup(pb.DeleteGroupRequest(group="g"), timeout=10)
    assert groups.FetchOffsets(pb.FetchOffsetsRequest(group="g"), timeout=10).offsets == []
