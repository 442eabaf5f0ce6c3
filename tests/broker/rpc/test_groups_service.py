"""Consumer groups over the gRPC API of a real server: join, rebalance, commit, lag, reset."""

from __future__ import annotations

import threading
import time

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


class Member:
    """A member that behaves like a client: heartbeats, and rejoins when told to."""

    def __init__(self, groups, client_id: str) -> None:
        self.groups = groups
        self.client_id = client_id
        self.reply: pb.JoinGroupResponse | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        member_id = ""
        while not self.stop.is_set():
            reply = join(self.groups, member_id, client_id=self.client_id)
            member_id = reply.member_id
            self.reply = reply
            while not self.stop.wait(0.1):
                beat = self.groups.Heartbeat(
                    pb.HeartbeatRequest(
                        group="g", member_id=member_id, generation_id=reply.generation_id
                    ),
                    timeout=10,
                )
                if beat.rebalance_in_progress:
                    break


def settled(members: list[Member]) -> list[pb.JoinGroupResponse] | None:
    replies = [m.reply for m in members]
    if any(r is None for r in replies) or len({r.generation_id for r in replies}) != 1:
        return None
    if sum(len(owned(r)) for r in replies) != 6:
        return None
    return replies


def wait_settled(members: list[Member]) -> list[pb.JoinGroupResponse]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        replies = settled(members)
        if replies:
            return replies
        time.sleep(0.1)
    raise AssertionError("the group did not settle")


def test_three_members_split_six_partitions_and_rebalance_when_one_leaves(api) -> None:
    admin, _, groups = api
    admin.CreateTopic(pb.CreateTopicRequest(name="events", partitions=6), timeout=30)
    coordinator = groups.FindCoordinator(pb.FindCoordinatorRequest(group="g"), timeout=10)
    assert coordinator.address
    members = [Member(groups, f"c{i}") for i in range(3)]
    threads = [threading.Thread(target=m.run, daemon=True) for m in members]
    for thread in threads:
        thread.start()
    try:
        replies = wait_settled(members)
        parts = [owned(r) for r in replies]
        assert all(len(p) == 2 for p in parts)
        assert set().union(*parts) == {("events", p) for p in range(6)}
        generation = replies[0].generation_id
        leaving = members.pop(0)
        leaving.stop.set()
        threads.pop(0).join()
        groups.LeaveGroup(
            pb.LeaveGroupRequest(group="g", member_id=leaving.reply.member_id), timeout=10
        )
        rejoined = wait_settled(members)
        assert rejoined[0].generation_id > generation
        assert [len(owned(r)) for r in rejoined] == [3, 3]
        assert owned(rejoined[0]) | owned(rejoined[1]) == {("events", p) for p in range(6)}
        stale = pb.HeartbeatRequest(
            group="g", member_id=rejoined[0].member_id, generation_id=generation - 1
        )
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
    finally:
        for member in members:
            member.stop.set()
        for thread in threads:
            thread.join()


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
