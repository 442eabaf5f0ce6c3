"""Classic consumer-group membership for Kafka clients, on the shared group coordinator.

FindCoordinator points a client at the agent coordinating its group; JoinGroup, SyncGroup,
Heartbeat and LeaveGroup drive the coordinator's generations; ListGroups, DescribeGroups and
DeleteGroups serve admin clients. The coordinator is the same object the gRPC Groups service
uses, so a group looks the same from both wires. Every error a client can cause is answered
with a code in the response (per group or per member where the version has room for it).

Static membership (``group_instance_id``) is accepted as far as the coordinator supports it:
a new member with an instance id already in the group replaces the old member, which is then
answered UNKNOWN_MEMBER_ID; the restart still costs a rebalance, and FENCED_INSTANCE_ID is
never returned.
"""

from __future__ import annotations

import logging
from typing import Any

from streamhouse.broker.groups.errors import MemberIdRequiredError, UnknownMemberIdError
from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.context import KafkaNode, RequestContext
from streamhouse.broker.kafka.errors import ErrorCode, error_code, error_message
from streamhouse.broker.service.groups import NotCoordinatorError

log = logging.getLogger("streamhouse.kafka")

GROUP_KEY = 0
TRANSACTION_KEY = 1
GROUP_TYPE = "classic"
# READ, DELETE and DESCRIBE: every operation on a group, since nothing is authorized apart.
GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
UNREQUESTED_OPERATIONS = -2147483648


# ---------------------------------------------------------------------------- routing
async def coordinator_error(ctx: RequestContext, group: object) -> int:
    """0 if this agent coordinates ``group``, else the code that sends the client elsewhere."""
    if not isinstance(group, str) or not group:
        return ErrorCode.INVALID_GROUP_ID
    try:
        await ctx.groups.check_coordinator(group)
    except NotCoordinatorError:
        return ErrorCode.NOT_COORDINATOR
    except Exception:
        log.warning("cannot tell who coordinates group %r", group, exc_info=True)
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    return ErrorCode.NONE


def client_host(ctx: RequestContext) -> str:
    """The peer address as Kafka shows it (``/127.0.0.1``)."""
    host = ctx.connection.peer.rpartition(":")[0] or ctx.connection.peer
    return f"/{host.strip('[]')}" if host else ""


# ---------------------------------------------------------------------------- FindCoordinator
async def _find(ctx: RequestContext, key: str, key_type: int) -> dict[str, Any]:
    """One coordinator entry: the node, or an error code and message."""
    entry: dict[str, Any] = {"key": key, "node_id": -1, "host": "", "port": -1}
    node: KafkaNode | None = None
    error, message = ErrorCode.NONE, None
    if key_type == TRANSACTION_KEY:
        # A fatal code: a retriable one makes librdkafka's init_transactions wait out its timeout.
        error = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        message = "transactions are not supported by this broker; no transaction coordinator"
    elif key_type != GROUP_KEY:
        error, message = ErrorCode.INVALID_REQUEST, f"unknown coordinator key type {key_type}"
    elif not key:
        error, message = ErrorCode.INVALID_GROUP_ID, "a group id must not be empty"
    else:
        try:
            agent_id, _ = await ctx.groups.coordinator_address(key)
        except Exception as exc:
            if not isinstance(exc, NotCoordinatorError):
                log.warning("cannot find the coordinator of group %r", key, exc_info=True)
            error, message = ErrorCode.COORDINATOR_NOT_AVAILABLE, error_message(exc)
        else:
            cluster = ctx.cluster
            if agent_id == cluster.agent_id:
                node = cluster.self_node()
            else:
                node = await cluster.node_of_agent(agent_id)
            if node is None:
                error = ErrorCode.COORDINATOR_NOT_AVAILABLE
                message = f"agent {agent_id} coordinates group {key!r} but has no Kafka listener"
    if node is not None:
        entry.update(node_id=node.node_id, host=node.host, port=node.port)
    entry.update(error_code=error, error_message=message)
    return entry


async def find_coordinator(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    key_type = request["key_type"]
    if ctx.api_version >= 4:
        keys = request["coordinator_keys"]
        return {
            "throttle_time_ms": 0,
            "coordinators": [await _find(ctx, key, key_type) for key in keys],
        }
    entry = await _find(ctx, request["key"], key_type)
    del entry["key"]
    return {"throttle_time_ms": 0, **entry}


# ---------------------------------------------------------------------------- membership
async def join_group(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    group, member_id = request["group_id"], request["member_id"]
    flexible_name = ctx.api_version >= 7  # protocol_name became nullable with protocol_type
    failed: dict[str, Any] = {
        "throttle_time_ms": 0,
        "generation_id": -1,
        "protocol_type": None,
        "protocol_name": None if flexible_name else "",
        "leader": "",
        "member_id": member_id,
        "members": [],
    }
    error = await coordinator_error(ctx, group)
    if error:
        return {**failed, "error_code": error}
    try:
        joined = await ctx.coordinator.join(
            group,
            member_id,
            client_id=ctx.client_id or "",
            client_host=client_host(ctx),
            protocol_type=request["protocol_type"],
            protocols=[(p["name"], p["metadata"]) for p in request["protocols"]],
            session_timeout_ms=request["session_timeout_ms"],
            rebalance_timeout_ms=request["rebalance_timeout_ms"],
            require_known_member_id=ctx.api_version >= 4,
            group_instance_id=request["group_instance_id"],
        )
    except MemberIdRequiredError as exc:
        return {**failed, "error_code": exc.kafka_code, "member_id": exc.member_id}
    except Exception as exc:
        return {**failed, "error_code": error_code(exc)}
    return {
        "throttle_time_ms": 0,
        "error_code": 0,
        "generation_id": joined.generation_id,
        "protocol_type": joined.protocol_type,
        "protocol_name": joined.protocol_name,
        "leader": joined.leader_id,
        "skip_assignment": False,
        "member_id": joined.member_id,
        "members": [
            {"member_id": mid, "group_instance_id": instance, "metadata": metadata}
            for mid, instance, metadata in joined.members
        ],
    }


async def sync_group(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    group = request["group_id"]
    error = await coordinator_error(ctx, group)
    if not error and ctx.api_version >= 5:
        error = _protocol_mismatch(ctx, group, request["protocol_type"], request["protocol_name"])
    if error:
        return {"throttle_time_ms": 0, "error_code": error, "assignment": b""}
    try:
        assignment = await ctx.coordinator.sync(
            group,
            request["member_id"],
            request["generation_id"],
            {a["member_id"]: a["assignment"] for a in request["assignments"]},
        )
    except Exception as exc:
        return {"throttle_time_ms": 0, "error_code": error_code(exc), "assignment": b""}
    protocol_type, protocol_name = ctx.coordinator.protocol_of(group)
    return {
        "throttle_time_ms": 0,
        "error_code": 0,
        "protocol_type": protocol_type,
        "protocol_name": protocol_name,
        "assignment": assignment,
    }


def _protocol_mismatch(
    ctx: RequestContext, group: str, protocol_type: str | None, protocol_name: str | None
) -> int:
    """SyncGroup v5+: a member that names another protocol than the group's is refused."""
    current_type, current_name = ctx.coordinator.protocol_of(group)
    if protocol_type is not None and current_type is not None and protocol_type != current_type:
        return ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    if protocol_name is not None and current_name is not None and protocol_name != current_name:
        return ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    return ErrorCode.NONE


async def heartbeat(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    group = request["group_id"]
    error = await coordinator_error(ctx, group)
    if not error:
        try:
            await ctx.coordinator.heartbeat(group, request["member_id"], request["generation_id"])
        except Exception as exc:
            error = error_code(exc)
    return {"throttle_time_ms": 0, "error_code": error}


async def _leave_one(ctx: RequestContext, group: str, member_id: str, instance: str | None) -> int:
    try:
        if not member_id and instance:
            member_id = await _member_of_instance(ctx, group, instance)
        await ctx.coordinator.leave(group, member_id)
    except Exception as exc:
        return error_code(exc)
    return ErrorCode.NONE


async def _member_of_instance(ctx: RequestContext, group: str, instance: str) -> str:
    """The member id a static member (admin removal by instance id) has now."""
    description = await ctx.coordinator.describe_group(group)
    for member in description.members:
        if member.group_instance_id == instance:
            return member.member_id
    raise UnknownMemberIdError(f"group {group!r} has no member with instance id {instance!r}")


async def leave_group(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    group = request["group_id"]
    error = await coordinator_error(ctx, group)
    if ctx.api_version < 3:
        if not error:
            error = await _leave_one(ctx, group, request["member_id"], None)
        return {"throttle_time_ms": 0, "error_code": error}
    members = []
    for identity in request["members"]:
        instance = identity["group_instance_id"]
        code = error or await _leave_one(ctx, group, identity["member_id"], instance)
        members.append(
            {"member_id": identity["member_id"], "group_instance_id": instance, "error_code": code}
        )
    return {"throttle_time_ms": 0, "error_code": error, "members": members}


# ---------------------------------------------------------------------------- admin
async def list_groups(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    """Groups this agent coordinates; admin clients ask every broker and merge the lists."""
    states = {s.lower() for s in request["states_filter"]}
    types = {t.lower() for t in request["types_filter"]}
    if types and GROUP_TYPE not in types:
        return {"throttle_time_ms": 0, "error_code": 0, "groups": []}
    try:
        summaries = await ctx.coordinator.list_groups()
    except Exception as exc:
        return {"throttle_time_ms": 0, "error_code": error_code(exc), "groups": []}
    groups = []
    for summary in summaries:
        if states and summary.state.lower() not in states:
            continue
        if await coordinator_error(ctx, summary.group):
            continue  # another agent coordinates it and lists it
        groups.append(
            {
                "group_id": summary.group,
                "protocol_type": summary.protocol_type,
                "group_state": summary.state,
                "group_type": GROUP_TYPE,
            }
        )
    return {"throttle_time_ms": 0, "error_code": 0, "groups": groups}


async def _describe_one(ctx: RequestContext, group: str, operations: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "group_id": group,
        "group_state": "",
        "protocol_type": "",
        "protocol_data": "",
        "members": [],
        "authorized_operations": operations,
    }
    error = await coordinator_error(ctx, group)
    if error:
        return {**entry, "error_code": error}
    try:
        description = await ctx.coordinator.describe_group(group)
    except Exception as exc:
        return {**entry, "error_code": error_code(exc)}
    entry.update(
        error_code=0,
        group_state=description.state,
        protocol_type=description.protocol_type,
        protocol_data=description.protocol,
        members=[
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "member_metadata": m.metadata,
                "member_assignment": m.assignment,
            }
            for m in description.members
        ],
    )
    return entry


async def describe_groups(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    operations = (
        GROUP_OPERATIONS if request["include_authorized_operations"] else UNREQUESTED_OPERATIONS
    )
    return {
        "throttle_time_ms": 0,
        "groups": [await _describe_one(ctx, group, operations) for group in request["groups"]],
    }


async def _delete_one(ctx: RequestContext, group: str) -> int:
    error = await coordinator_error(ctx, group)
    if error:
        return error
    try:
        await ctx.coordinator.delete_group(group)
    except Exception as exc:
        return error_code(exc)
    return ErrorCode.NONE


async def delete_groups(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    return {
        "throttle_time_ms": 0,
        "results": [
            {"group_id": group, "error_code": await _delete_one(ctx, group)}
            for group in request["groups_names"]
        ],
    }


HANDLERS = {
    apis.FIND_COORDINATOR: find_coordinator,
    apis.JOIN_GROUP: join_group,
    apis.SYNC_GROUP: sync_group,
    apis.HEARTBEAT: heartbeat,
    apis.LEAVE_GROUP: leave_group,
    apis.LIST_GROUPS: list_groups,
    apis.DESCRIBE_GROUPS: describe_groups,
    apis.DELETE_GROUPS: delete_groups,
}
