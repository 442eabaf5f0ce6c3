"""Argument checks run before the coordinator touches a group, so bad input changes nothing.

Requests arrive from two wires whose decoders are lenient about types; each check raises the
group error whose Kafka code the listener should answer with.
"""

from __future__ import annotations

from collections.abc import Mapping

from streamhouse.broker.groups.errors import (
    GroupError,
    GroupProtocolError,
    InconsistentGroupProtocolError,
    InvalidGroupIdError,
)


def check_group_id(group: object) -> None:
    if not isinstance(group, str) or not group:
        raise InvalidGroupIdError(f"group id must be a non-empty string, got {group!r}")


def check_int(value: object, what: str, error: type[GroupError]) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise error(f"{what} must be an integer, got {value!r}")


def check_assignments(assignments: object) -> dict[str, bytes]:
    if assignments is None:
        return {}
    if not isinstance(assignments, Mapping):
        raise GroupProtocolError(f"assignments must map member ids to bytes, not {assignments!r}")
    plan: dict[str, bytes] = {}
    for member_id, data in assignments.items():
        if not isinstance(data, bytes | bytearray | memoryview):
            raise GroupProtocolError(
                f"assignment of member {member_id!r} must be bytes, not {type(data).__name__}"
            )
        plan[str(member_id)] = bytes(data)
    return plan


def check_protocols(protocol_type: object, protocols: object) -> list[tuple[str, bytes]]:
    if not isinstance(protocol_type, str) or not protocol_type:
        raise InconsistentGroupProtocolError(
            f"protocol type must be a non-empty string (e.g. 'consumer'), got {protocol_type!r}"
        )
    offered: list[tuple[str, bytes]] = []
    for item in protocols if isinstance(protocols, list | tuple) else ():
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise InconsistentGroupProtocolError("protocols must be (name, metadata) pairs")
        name, metadata = item
        if not isinstance(name, str) or not isinstance(metadata, bytes | bytearray | memoryview):
            raise InconsistentGroupProtocolError(
                f"protocol must be a (str, bytes) pair, got ({type(name).__name__}, "
                f"{type(metadata).__name__})"
            )
        offered.append((name, bytes(metadata)))
    if not offered:
        raise InconsistentGroupProtocolError("a member must offer at least one protocol")
    return offered
