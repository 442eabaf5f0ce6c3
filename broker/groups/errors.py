"""Errors of the group coordinator, each carrying the Kafka error code a listener answers with.

Both front doors translate these: the Kafka listener puts ``kafka_code`` in the response, the
gRPC service maps the class name to a status. Messages tell the client what to do next, since
the listeners forward them as they are.
"""

from __future__ import annotations


class GroupError(Exception):
    """Base of every coordinator error; ``kafka_code`` is the Kafka protocol error code."""

    kafka_code: int = -1  # UNKNOWN_SERVER_ERROR


class CoordinatorNotAvailableError(GroupError):
    """The coordinator is shutting down or closed: find the group's coordinator again."""

    kafka_code = 15


class IllegalGenerationError(GroupError):
    """The member speaks for a generation that is over: it must rejoin the group."""

    kafka_code = 22


class InconsistentGroupProtocolError(GroupError):
    """The member's protocol type or assignors have nothing in common with the group's."""

    kafka_code = 23


class InvalidGroupIdError(GroupError):
    """The group id is empty or not a string."""

    kafka_code = 24


class UnknownMemberIdError(GroupError):
    """The member is not (or no longer) in the group: it must rejoin with an empty member id."""

    kafka_code = 25


class InvalidSessionTimeoutError(GroupError):
    """The session timeout is outside the range this coordinator accepts."""

    kafka_code = 26


class RebalanceInProgressError(GroupError):
    """The group is rebalancing: the member must rejoin to get its new assignment."""

    kafka_code = 27


class GroupProtocolError(GroupError, ValueError):
    """Consumer-protocol bytes (subscription or assignment) that do not parse."""

    kafka_code = 42  # INVALID_REQUEST


class NonEmptyGroupError(GroupError):
    """The group still has members, so it cannot be deleted."""

    kafka_code = 68


class GroupIdNotFoundError(GroupError, LookupError):
    """Nothing is known about the group: no members and no committed offsets."""

    kafka_code = 69


class MemberIdRequiredError(GroupError):
    """A first join without a member id (JoinGroup v4+): rejoin with ``member_id``.

    Handing the id out before admitting the member means a client that retries a lost response
    does not leave a ghost member behind for a whole session timeout.
    """

    kafka_code = 79

    def __init__(self, member_id: str) -> None:
        super().__init__(f"rejoin with the member id {member_id!r} assigned by the coordinator")
        self.member_id = member_id
