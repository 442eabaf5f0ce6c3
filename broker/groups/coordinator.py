"""The group coordinator: Kafka's classic consumer-group protocol, independent of any wire.

States follow Kafka's GroupCoordinator: ``Empty`` -> ``PreparingRebalance`` (members rejoin)
-> ``CompletingRebalance`` (the leader computes assignments) -> ``Stable``. The join phase ends
when every member has rejoined or the longest rebalance timeout passes; members that did not
rejoin are dropped. Members that stop heartbeating are dropped after their session timeout by a
background task, which starts a rebalance for the rest.

Membership lives in this process (the agent that coordinates the group); committed offsets live
in the metadata store, so they outlive the agent. Every transition happens under the group's
lock, and the lock is never held while a member waits for the join or sync phase to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence

from streamhouse.broker.groups import metrics, validate
from streamhouse.broker.groups.errors import (
    CoordinatorNotAvailableError,
    GroupError,
    GroupIdNotFoundError,
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
    encode_assignment,
)
from streamhouse.broker.groups.server_side import CONSUMER_PROTOCOL_TYPE, join_and_assign
from streamhouse.broker.groups.state import Group, GroupState, Member
from streamhouse.broker.metadata.models import CommittedOffset
from streamhouse.broker.metadata.store import MetadataStore

__all__ = [
    "AssignedMember",
    "GroupCoordinator",
    "GroupDescription",
    "GroupSummary",
    "JoinResult",
    "MemberDescription",
]

log = logging.getLogger("streamhouse.groups")

# Kafka's coordinator leaves a member the leader gave nothing with empty bytes, which some
# clients cannot parse; a consumer group gets a well-formed empty assignment instead.
EMPTY_CONSUMER_ASSIGNMENT = encode_assignment(Assignment({}))
_TIMER_SLACK_S = 0.002  # asyncio may fire a timer up to one clock tick early


class GroupCoordinator:
    """Membership, generations and offsets of every group this agent coordinates.

    Args:
        metadata: Where committed offsets are stored.
        min_session_timeout_ms, max_session_timeout_ms: Accepted session timeouts (Kafka's
            ``group.min/max.session.timeout.ms``).
        initial_rebalance_delay_ms: How long the first rebalance of an empty group waits for
            more members, extended by each newcomer up to the rebalance timeout (Kafka's
            ``group.initial.rebalance.delay.ms``), so consumers started together get one
            generation instead of one per arrival.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        *,
        min_session_timeout_ms: int = 1000,
        max_session_timeout_ms: int = 300_000,
        initial_rebalance_delay_ms: int = 0,
    ) -> None:
        if not 0 < min_session_timeout_ms <= max_session_timeout_ms:
            raise ValueError("need 0 < min_session_timeout_ms <= max_session_timeout_ms")
        if initial_rebalance_delay_ms < 0:
            raise ValueError("initial_rebalance_delay_ms must be >= 0")
        self.metadata = metadata
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self.initial_rebalance_delay_s = initial_rebalance_delay_ms / 1000
        self._groups: dict[str, Group] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._expiry: asyncio.Task[None] | None = None
        self._closed = False
        # Session expiry is checked this often; a quarter of the shortest session keeps the
        # lateness of an expulsion small relative to the timeout itself.
        self._expiry_interval_s = min(0.25, min_session_timeout_ms / 4000)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Starts expelling members whose session timed out."""
        self._check_open()
        if self._expiry is None:
            self._expiry = asyncio.create_task(self._expire_sessions(), name="group-expiry")

    async def close(self) -> None:
        """Stops the expiry task and fails every pending join and sync; later calls fail too."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in (self._expiry, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        closing = CoordinatorNotAvailableError(
            "the group coordinator is shutting down; find the coordinator again and rejoin"
        )
        for group in self._groups.values():
            if group.timer is not None:
                group.timer.cancel()
            for member in group.members.values():
                _fail_waiters(member, closing)
        self._groups.clear()

    # ------------------------------------------------------------------ membership
    async def join(
        self,
        group: str,
        member_id: str,
        *,
        client_id: str,
        client_host: str,
        protocol_type: str,
        protocols: Sequence[tuple[str, bytes]],
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        require_known_member_id: bool = False,
        group_instance_id: str | None = None,
    ) -> JoinResult:
        """Joins (or rejoins) and waits for the join phase to end.

        An empty ``member_id`` joins as a new member with a fresh id; with
        ``require_known_member_id`` the id is only handed out (MemberIdRequiredError) and the
        member must come back with it. A non-positive ``rebalance_timeout_ms`` means the
        session timeout (JoinGroup v0 has no rebalance timeout).

        Raises:
            InvalidGroupIdError, InvalidSessionTimeoutError, InconsistentGroupProtocolError,
            MemberIdRequiredError, UnknownMemberIdError, CoordinatorNotAvailableError.
        """
        self._check_open()
        validate.check_group_id(group)
        validate.check_int(session_timeout_ms, "session_timeout_ms", InvalidSessionTimeoutError)
        validate.check_int(rebalance_timeout_ms, "rebalance_timeout_ms", InvalidSessionTimeoutError)
        if not self.min_session_timeout_ms <= session_timeout_ms <= self.max_session_timeout_ms:
            raise InvalidSessionTimeoutError(
                f"session timeout {session_timeout_ms} ms is outside the accepted range "
                f"{self.min_session_timeout_ms}..{self.max_session_timeout_ms} ms"
            )
        if not isinstance(member_id, str):
            raise UnknownMemberIdError(f"member id must be a string, got {member_id!r}")
        if group_instance_id is not None and not isinstance(group_instance_id, str):
            raise InvalidGroupIdError("group instance id must be a string or None")
        offered = validate.check_protocols(protocol_type, protocols)
        member = Member(
            member_id=member_id,
            group_instance_id=group_instance_id or None,
            client_id=str(client_id),
            client_host=str(client_host),
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms
            if rebalance_timeout_ms > 0
            else session_timeout_ms,
            protocols=offered,
        )
        async with self._locked(group, create=True) as state:
            assert state is not None
            outcome = self._register_join(state, member, protocol_type, require_known_member_id)
        if isinstance(outcome, JoinResult):
            return outcome
        # A caller that gives up (client disconnected) must not cancel the join for the group.
        return await asyncio.shield(outcome)

    async def sync(
        self,
        group: str,
        member_id: str,
        generation_id: int,
        assignments: Mapping[str, bytes] | None,
    ) -> bytes:
        """This member's assignment for the generation; waits for the leader's if needed.

        Only the leader's ``assignments`` count (``None`` or missing members mean empty).

        Raises:
            UnknownMemberIdError, IllegalGenerationError, RebalanceInProgressError,
            CoordinatorNotAvailableError.
        """
        self._check_open()
        validate.check_group_id(group)
        plan = validate.check_assignments(assignments)
        async with self._locked(group, create=False) as state:
            member = self._member(state, member_id)
            assert state is not None
            self._check_generation(state, generation_id)
            if state.state is GroupState.PREPARING_REBALANCE:
                raise RebalanceInProgressError(
                    f"group {group!r} is rebalancing; rejoin to get the new assignment"
                )
            now = _now()
            if state.state is GroupState.STABLE:
                member.touch(now)
                return member.assignment
            # CompletingRebalance: the leader brings everyone's assignment, followers wait.
            if not member.awaiting_sync:
                member.sync_waiter = _future()
            waiter = member.sync_waiter
            assert waiter is not None
            if member.member_id == state.leader_id:
                self._apply_assignments(state, plan, now)
        return await asyncio.shield(waiter)

    async def heartbeat(self, group: str, member_id: str, generation_id: int) -> None:
        """Keeps the member's session alive.

        Raises:
            RebalanceInProgressError: The member must rejoin (its session is still kept).
            UnknownMemberIdError, IllegalGenerationError, CoordinatorNotAvailableError.
        """
        self._check_open()
        validate.check_group_id(group)
        async with self._locked(group, create=False) as state:
            member = self._member(state, member_id)
            assert state is not None
            self._check_generation(state, generation_id)
            member.touch(_now())
            if state.state is GroupState.PREPARING_REBALANCE:
                raise RebalanceInProgressError(
                    f"group {group!r} is rebalancing; rejoin to get the new assignment"
                )

    async def leave(self, group: str, member_id: str) -> None:
        """Removes the member now instead of after its session timeout; the rest rebalance.

        Raises:
            UnknownMemberIdError, CoordinatorNotAvailableError.
        """
        self._check_open()
        validate.check_group_id(group)
        async with self._locked(group, create=False) as state:
            if state is not None and state.pending_members.pop(member_id, None) is not None:
                return
            self._member(state, member_id)
            assert state is not None
            self._remove_member(
                state, member_id, UnknownMemberIdError(f"member {member_id!r} left the group")
            )
            log.info("member %s left group %s", member_id, group)

    # ------------------------------------------------------------------ offsets
    async def commit_offsets(
        self,
        group: str,
        member_id: str,
        generation_id: int,
        offsets: Sequence[tuple[str, int, int, str]],
    ) -> None:
        """Stores positions for a member of the current generation.

        Generation -1 is an outsider's commit (Kafka's simple consumer, offset resets): it is
        allowed only while the group has no members, so it never races a live consumer.

        Raises:
            UnknownMemberIdError, IllegalGenerationError, RebalanceInProgressError (the
            assignment of the new generation is not known yet), the store's errors
            (UnknownTopicError, UnknownPartitionError, InvalidRequestError).
        """
        self._check_open()
        validate.check_group_id(group)
        validate.check_int(generation_id, "generation_id", IllegalGenerationError)
        async with self._locked(group, create=False) as state:
            outsider = generation_id < 0
            if state is None or not state.members:
                if not outsider:
                    raise UnknownMemberIdError(
                        f"group {group!r} has no member {member_id!r}; rejoin the group"
                    )
            elif outsider and member_id not in state.members:
                raise UnknownMemberIdError(
                    f"group {group!r} has active members; only its members may commit offsets "
                    "(stop its consumers first)"
                )
            else:
                member = self._member(state, member_id)
                self._check_generation(state, generation_id)
                if state.state is GroupState.COMPLETING_REBALANCE:
                    raise RebalanceInProgressError(
                        f"group {group!r} is completing a rebalance; rejoin and commit again"
                    )
                member.touch(_now())
            await self.metadata.commit_offsets(group, offsets)

    async def fetch_offsets(self, group: str, topic: str | None = None) -> list[CommittedOffset]:
        """Committed positions; empty for a group that never committed."""
        self._check_open()
        validate.check_group_id(group)
        return await self.metadata.fetch_offsets(group, topic)

    # ------------------------------------------------------------------ admin
    async def list_groups(self) -> list[GroupSummary]:
        """Live groups plus groups that only have committed offsets (those are Empty)."""
        self._check_open()
        summaries = {
            g.group_id: GroupSummary(
                g.group_id, g.state.value, g.protocol_type or "", len(g.members)
            )
            for g in self._groups.values()
            if g.has_history
        }
        for name in await self.metadata.list_groups():
            summaries.setdefault(name, GroupSummary(name, GroupState.EMPTY.value, "", 0))
        return [summaries[name] for name in sorted(summaries)]

    async def describe_group(self, group: str) -> GroupDescription:
        """A group's state and members; an unknown group is Dead with no members (as in
        Kafka), a group that only has committed offsets is Empty."""
        self._check_open()
        validate.check_group_id(group)
        state = self._groups.get(group)
        if state is None or not state.has_history:
            known = bool(await self.metadata.fetch_offsets(group))
            phase = GroupState.EMPTY if known else GroupState.DEAD
            return GroupDescription(group, phase.value, "", "", 0, [])
        stable = state.state is GroupState.STABLE
        members = [
            MemberDescription(
                member_id=m.member_id,
                client_id=m.client_id,
                client_host=m.client_host,
                metadata=m.metadata_for(state.protocol_name) if stable else b"",
                assignment=m.assignment if stable else b"",
                group_instance_id=m.group_instance_id,
            )
            for m in state.members.values()
        ]
        return GroupDescription(
            group=group,
            state=state.state.value,
            protocol_type=state.protocol_type or "",
            protocol=(state.protocol_name or "") if stable else "",
            generation_id=state.generation_id,
            members=members,
        )

    async def delete_group(self, group: str) -> None:
        """Forgets an empty group and its committed offsets.

        Raises:
            NonEmptyGroupError: It has members.
            GroupIdNotFoundError: Nothing is known about it.
        """
        self._check_open()
        validate.check_group_id(group)
        async with self._locked(group, create=True) as state:
            assert state is not None
            if state.members:
                raise NonEmptyGroupError(
                    f"group {group!r} has {len(state.members)} members; stop them first"
                )
            known = state.has_history or bool(await self.metadata.fetch_offsets(group))
            if not known:
                self._groups.pop(group, None)
                raise GroupIdNotFoundError(f"group {group!r} has no members and no offsets")
            await self.metadata.delete_group(group)
            state.state = GroupState.DEAD
            if state.timer is not None:
                state.timer.cancel()
            self._groups.pop(group, None)
            metrics.forget(group)
            log.info("deleted group %s", group)

    def is_active(self, group: str) -> bool:
        """Whether the group has members (offsets of an active group must not be reset)."""
        state = self._groups.get(group)
        return state is not None and bool(state.members)

    # ------------------------------------------------------------------ server-side assignment
    # Joins as a Kafka consumer would and, when leading, assigns for the whole group: the gRPC
    # API's server-side assignment (server_side.join_and_assign, with this coordinator as self).
    join_with_assignment = join_and_assign

    def protocol_of(self, group: str) -> tuple[str | None, str | None]:
        """(protocol type, protocol name) of the group now; None where not known (yet)."""
        state = self._groups.get(group)
        if state is None:
            return None, None
        return state.protocol_type, state.protocol_name

    def member_ids(self, group: str) -> list[str]:
        """The group's current members in join order (empty for an unknown group)."""
        state = self._groups.get(group)
        return list(state.members) if state is not None else []

    # ------------------------------------------------------------------ transitions
    def _register_join(
        self, group: Group, member: Member, protocol_type: str, require_known: bool
    ) -> JoinResult | asyncio.Future[JoinResult]:
        """Admits or updates the member; a result now, or a future for the join phase's end."""
        if not group.supports(protocol_type, member.protocols, member.member_id):
            self._discard_if_unused(group)
            raise InconsistentGroupProtocolError(
                f"group {group.group_id!r} uses protocol type {group.protocol_type!r} with "
                f"assignors {sorted(group.candidate_protocols(list(group.members.values())))}; "
                f"this member offers {protocol_type!r} with "
                f"{[name for name, _ in member.protocols]}"
            )
        now = _now()
        if not member.member_id:
            member.member_id = f"{member.client_id}-{uuid.uuid4()}"
            if require_known:
                group.pending_members[member.member_id] = now + member.session_timeout_ms / 1000
                raise MemberIdRequiredError(member.member_id)
            return self._add_member(group, member, protocol_type, now)
        if group.pending_members.pop(member.member_id, None) is not None:
            return self._add_member(group, member, protocol_type, now)
        current = group.members.get(member.member_id)
        if current is None:
            self._discard_if_unused(group)
            raise UnknownMemberIdError(
                f"group {group.group_id!r} has no member {member.member_id!r}; "
                "rejoin with an empty member id"
            )
        unchanged = current.matches(member.protocols) and protocol_type == group.protocol_type
        if group.state is GroupState.COMPLETING_REBALANCE and unchanged:
            return group.join_result(current)  # a lost JoinGroup response, asked again
        if group.state is GroupState.STABLE and unchanged and current.member_id != group.leader_id:
            # A follower with nothing new: no rebalance, the current generation again. The
            # leader's rejoin does rebalance, since that is how it reports topic changes.
            current.touch(now)
            return group.join_result(current)
        if len(group.members) == 1:
            group.protocol_type = protocol_type  # a sole member may switch protocol type
        return self._update_member(group, current, member, now)

    def _add_member(
        self, group: Group, member: Member, protocol_type: str, now: float
    ) -> asyncio.Future[JoinResult]:
        if member.group_instance_id is not None:
            for other in list(group.members.values()):
                if other.group_instance_id == member.group_instance_id:
                    # A static member restarted under a new member id: the old one is fenced.
                    self._remove_member(
                        group,
                        other.member_id,
                        UnknownMemberIdError(
                            f"member {other.member_id!r} was replaced by a new member with "
                            f"group instance id {member.group_instance_id!r}"
                        ),
                    )
        if not group.members:
            group.protocol_type = protocol_type
        member.touch(now)
        member.join_waiter = _future()
        group.add(member)
        metrics.MEMBERS.labels(group.group_id).set(len(group.members))
        log.info("member %s joins group %s", member.member_id, group.group_id)
        if group.state is GroupState.PREPARING_REBALANCE:
            if group.hold_until is not None:
                group.hold_until = min(
                    now + self.initial_rebalance_delay_s, group.rebalance_deadline
                )
                self._schedule(group, group.hold_until)
        else:
            self._prepare_rebalance(group, f"member {member.member_id} joined", now)
        waiter = member.join_waiter
        self._maybe_complete_join(group, now)
        return waiter

    def _update_member(
        self, group: Group, current: Member, joining: Member, now: float
    ) -> asyncio.Future[JoinResult]:
        current.protocols = joining.protocols
        current.client_id = joining.client_id
        current.client_host = joining.client_host
        current.session_timeout_ms = joining.session_timeout_ms
        current.rebalance_timeout_ms = joining.rebalance_timeout_ms
        current.touch(now)
        if not current.awaiting_join:
            current.join_waiter = _future()
        waiter = current.join_waiter
        assert waiter is not None
        if group.state is not GroupState.PREPARING_REBALANCE:
            self._prepare_rebalance(group, f"member {current.member_id} rejoined", now)
        self._maybe_complete_join(group, now)
        return waiter

    def _remove_member(self, group: Group, member_id: str, error: GroupError) -> None:
        member = group.remove(member_id)
        _fail_waiters(member, error)
        metrics.MEMBERS.labels(group.group_id).set(len(group.members))
        now = _now()
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._prepare_rebalance(group, f"member {member_id} left", now)
        self._maybe_complete_join(group, now)

    def _prepare_rebalance(self, group: Group, reason: str, now: float) -> None:
        """Asks every member to rejoin; a pending sync learns the generation is over."""
        if group.state is GroupState.COMPLETING_REBALANCE:
            error = RebalanceInProgressError(
                f"group {group.group_id!r} started another rebalance ({reason}); rejoin"
            )
            for member in group.members.values():
                member.assignment = b""
                if member.awaiting_sync:
                    member.sync_waiter.set_exception(error)  # type: ignore[union-attr]
        was_empty = group.state is GroupState.EMPTY
        group.state = GroupState.PREPARING_REBALANCE
        group.rebalance_deadline = now + group.rebalance_timeout_s()
        group.hold_until = None
        wake_at = group.rebalance_deadline
        if was_empty and self.initial_rebalance_delay_s > 0:
            group.hold_until = min(now + self.initial_rebalance_delay_s, group.rebalance_deadline)
            wake_at = group.hold_until
        self._schedule(group, wake_at)
        log.info("group %s rebalancing: %s", group.group_id, reason)

    def _maybe_complete_join(self, group: Group, now: float) -> None:
        if group.state is not GroupState.PREPARING_REBALANCE or not group.all_joined():
            return
        if group.hold_until is not None and now + _TIMER_SLACK_S < group.hold_until:
            return
        self._complete_join(group, now)

    def _complete_join(self, group: Group, now: float) -> None:
        """Starts the next generation with the members that rejoined."""
        if group.timer is not None:
            group.timer.cancel()
            group.timer = None
        group.hold_until = None
        for member in [m for m in group.members.values() if not m.awaiting_join]:
            log.info("member %s did not rejoin group %s in time", member.member_id, group.group_id)
            group.remove(member.member_id)
            _fail_waiters(
                member,
                UnknownMemberIdError(
                    f"member {member.member_id!r} did not rejoin group {group.group_id!r} "
                    "within the rebalance timeout"
                ),
            )
        group.generation_id += 1
        metrics.REBALANCES.labels(group.group_id).inc()
        metrics.MEMBERS.labels(group.group_id).set(len(group.members))
        if not group.members:
            group.state = GroupState.EMPTY
            group.protocol_name = None
            group.leader_id = None
            log.info("group %s is empty at generation %d", group.group_id, group.generation_id)
            return
        group.protocol_name = group.select_protocol()
        group.state = GroupState.COMPLETING_REBALANCE
        for member in group.members.values():
            member.assignment = b""
            member.touch(now)
        for member in group.members.values():
            waiter = member.join_waiter
            member.join_waiter = None
            assert waiter is not None
            waiter.set_result(group.join_result(member))
        log.info(
            "group %s generation %d: %d members, protocol %s, leader %s",
            group.group_id,
            group.generation_id,
            len(group.members),
            group.protocol_name,
            group.leader_id,
        )

    def _apply_assignments(
        self, group: Group, assignments: Mapping[str, bytes], now: float
    ) -> None:
        """The leader's plan: everyone's assignment becomes known and the group is Stable."""
        consumer = group.protocol_type == CONSUMER_PROTOCOL_TYPE
        for member in group.members.values():
            data = assignments.get(member.member_id) or b""
            member.assignment = data if data or not consumer else EMPTY_CONSUMER_ASSIGNMENT
            member.touch(now)
        group.state = GroupState.STABLE
        for member in group.members.values():
            if member.awaiting_sync:
                member.sync_waiter.set_result(member.assignment)  # type: ignore[union-attr]
        log.info("group %s stable at generation %d", group.group_id, group.generation_id)

    def _discard_if_unused(self, group: Group) -> None:
        if group.is_unused() and self._groups.get(group.group_id) is group:
            del self._groups[group.group_id]

    # ------------------------------------------------------------------ timers
    def _schedule(self, group: Group, at: float) -> None:
        if group.timer is not None:
            group.timer.cancel()
        loop = asyncio.get_running_loop()
        group.timer = loop.call_at(at, self._on_timer, group)

    def _on_timer(self, group: Group) -> None:
        if self._closed:
            return
        task = asyncio.create_task(self._rebalance_timer(group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _rebalance_timer(self, group: Group) -> None:
        async with self._locked(group.group_id, create=False) as state:
            if state is not group or group.state is not GroupState.PREPARING_REBALANCE:
                return
            group.timer = None
            now = _now()
            if now + _TIMER_SLACK_S >= group.rebalance_deadline:
                self._complete_join(group, now)
            elif group.hold_until is not None and now + _TIMER_SLACK_S >= group.hold_until:
                group.hold_until = None
                if group.all_joined():
                    self._complete_join(group, now)
                else:
                    self._schedule(group, group.rebalance_deadline)
            else:
                self._schedule(
                    group,
                    min(group.hold_until or group.rebalance_deadline, group.rebalance_deadline),
                )

    async def _expire_sessions(self) -> None:
        while True:
            await asyncio.sleep(self._expiry_interval_s)
            for group in list(self._groups.values()):
                try:
                    await self._expire_group(group)
                except Exception:  # one group's trouble must not stop expiry for the others
                    log.exception("session expiry failed for group %s", group.group_id)

    async def _expire_group(self, group: Group) -> None:
        now = _now()
        if not _has_expired(group, now):
            return
        async with self._locked(group.group_id, create=False) as state:
            if state is not group:
                return
            now = _now()
            for member_id, deadline in list(group.pending_members.items()):
                if deadline <= now:
                    del group.pending_members[member_id]
            for member in list(group.members.values()):
                if _session_expired(member, now) and member.member_id in group.members:
                    log.info(
                        "member %s of group %s missed its %d ms session timeout",
                        member.member_id,
                        group.group_id,
                        member.session_timeout_ms,
                    )
                    self._remove_member(
                        group,
                        member.member_id,
                        UnknownMemberIdError(
                            f"member {member.member_id!r} was removed from group "
                            f"{group.group_id!r} after its session timed out; rejoin"
                        ),
                    )
            self._discard_if_unused(group)

    # ------------------------------------------------------------------ helpers
    @contextlib.asynccontextmanager
    async def _locked(self, group_id: str, *, create: bool) -> AsyncIterator[Group | None]:
        """The group under its lock; retried if the group was replaced while waiting."""
        while True:
            group = self._groups.get(group_id)
            if group is None:
                if not create:
                    yield None
                    return
                group = self._groups[group_id] = Group(group_id)
            async with group.lock:
                if self._groups.get(group_id) is group:
                    self._check_open()
                    yield group
                    return

    def _check_open(self) -> None:
        if self._closed:
            raise CoordinatorNotAvailableError(
                "the group coordinator is closed; find the group's coordinator again"
            )

    @staticmethod
    def _member(group: Group | None, member_id: str) -> Member:
        member = group.members.get(member_id) if group is not None else None
        if member is None:
            name = group.group_id if group is not None else "this group"
            raise UnknownMemberIdError(
                f"{name!r} has no member {member_id!r}; rejoin with an empty member id"
            )
        return member

    @staticmethod
    def _check_generation(group: Group, generation_id: int) -> None:
        if generation_id != group.generation_id:
            raise IllegalGenerationError(
                f"generation {generation_id} of group {group.group_id!r} is over (current "
                f"{group.generation_id}); rejoin the group"
            )


def _now() -> float:
    return asyncio.get_running_loop().time()


def _future() -> asyncio.Future:
    """A waiter whose exception is marked retrieved: nobody may be left awaiting it."""
    future = asyncio.get_running_loop().create_future()
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
    return future


def _fail_waiters(member: Member, error: GroupError) -> None:
    for waiter in (member.join_waiter, member.sync_waiter):
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


def _session_expired(member: Member, now: float) -> bool:
    """Members waiting in a join or sync phase are not expected to heartbeat (Kafka)."""
    return (
        not member.awaiting_join and not member.awaiting_sync and member.heartbeat_deadline <= now
    )


def _has_expired(group: Group, now: float) -> bool:
    return any(d <= now for d in group.pending_members.values()) or any(
        _session_expired(m, now) for m in group.members.values()
    )
