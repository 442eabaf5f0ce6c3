"""Consumer groups: membership, generations, partition assignment and committed offsets.

Written once for both front doors: the gRPC service and the Kafka listener use the same
coordinator.
"""

from streamhouse.broker.groups.assignors import ASSIGNORS, assign
from streamhouse.broker.groups.coordinator import GroupCoordinator
from streamhouse.broker.groups.errors import (
    CoordinatorNotAvailableError,
    GroupError,
    GroupIdNotFoundError,
    GroupProtocolError,
    IllegalGenerationError,
    InconsistentGroupProtocolError,
    InvalidGroupIdError,
    InvalidSessionTimeoutError,
    MemberIdRequiredError,
    NonEmptyGroupError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from streamhouse.broker.groups.models import (
    AssignedMember,
    GroupDescription,
    GroupSummary,
    JoinResult,
    MemberDescription,
)
from streamhouse.broker.groups.protocol import (
    Assignment,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from streamhouse.broker.groups.state import GroupState

__all__ = [
    "ASSIGNORS",
    "AssignedMember",
    "Assignment",
    "CoordinatorNotAvailableError",
    "GroupCoordinator",
    "GroupDescription",
    "GroupError",
    "GroupIdNotFoundError",
    "GroupProtocolError",
    "GroupState",
    "GroupSummary",
    "IllegalGenerationError",
    "InconsistentGroupProtocolError",
    "InvalidGroupIdError",
    "InvalidSessionTimeoutError",
    "JoinResult",
    "MemberDescription",
    "MemberIdRequiredError",
    "NonEmptyGroupError",
    "RebalanceInProgressError",
    "Subscription",
    "UnknownMemberIdError",
    "assign",
    "decode_assignment",
    "decode_subscription",
    "encode_assignment",
    "encode_subscription",
]
