"""State kept for clients, in SQL: agents, consumer-group offsets, idempotent producers."""

from __future__ import annotations

from collections.abc import Sequence

from streamhouse.broker.metadata import validate
from streamhouse.broker.metadata.errors import (
    InvalidRequestError,
    ProducerFencedError,
    UnknownAgentError,
    UnknownPartitionError,
    UnknownProducerError,
    UnknownTopicError,
)
from streamhouse.broker.metadata.models import AgentInfo, CommittedOffset, ProducerPartitionState
from streamhouse.broker.metadata.sqlbase import SqlStoreBase


class ClientsMixin(SqlStoreBase):
    """Agent registry, committed group offsets, producer ids and per-partition producer state."""

    # -------------------------------------------------------------------- agents
    async def register_agent(
        self, agent_id: str, address: str, kafka_address: str = ""
    ) -> AgentInfo:
        """Registers (or re-registers after a restart) an agent; both times become now."""
        validate.name(agent_id, "agent_id")
        for value in (address, kafka_address):
            if not isinstance(value, str):
                raise InvalidRequestError(f"addresses must be strings, got {value!r}")
        async with self._write() as tx:
            row = await tx.fetchone(
                "INSERT INTO agents (agent_id, address, heartbeat_at, started_at, kafka_address) "
                "SELECT ?, ?, n, n, ? FROM (SELECT sh_now_ms() AS n) AS clock WHERE true "
                "ON CONFLICT (agent_id) DO UPDATE SET address = excluded.address, "
                "heartbeat_at = excluded.heartbeat_at, started_at = excluded.started_at, "
                "kafka_address = excluded.kafka_address "
                "RETURNING agent_id, address, heartbeat_at, started_at, kafka_address",
                agent_id,
                address,
                kafka_address,
            )
        assert row is not None
        return AgentInfo(*row)

    async def heartbeat_agent(self, agent_id: str) -> None:
        """Raises UnknownAgentError if the agent was removed, so it knows to re-register."""
        async with self._write() as tx:
            row = await tx.fetchone(
                "UPDATE agents SET heartbeat_at = sh_now_ms() WHERE agent_id = ? "
                "RETURNING agent_id",
                agent_id,
            )
        if row is None:
            raise UnknownAgentError(f"agent {agent_id!r} is not registered")

    async def list_agents(self, *, alive_within_ms: int | None = None) -> list[AgentInfo]:
        """All agents, or those whose last heartbeat is within ``alive_within_ms`` of now."""
        sql = "SELECT agent_id, address, heartbeat_at, started_at, kafka_address FROM agents"
        args: tuple[int, ...] = ()
        if alive_within_ms is not None:
            validate.integer(alive_within_ms, "alive_within_ms", 0)
            sql += " WHERE heartbeat_at >= sh_now_ms() - ?"
            args = (alive_within_ms,)
        async with self._read() as tx:
            rows = await tx.fetchall(f"{sql} ORDER BY agent_id", *args)
        return [AgentInfo(*row) for row in rows]

    async def remove_agent(self, agent_id: str) -> None:
        """Forgets an agent (no-op if unknown). Its leases stay until they expire."""
        async with self._write() as tx:
            await tx.execute("DELETE FROM agents WHERE agent_id = ?", agent_id)

    # ----------------------------------------------------- consumer-group offsets
    async def commit_offsets(
        self, group: str, offsets: Sequence[tuple[str, int, int, str]]
    ) -> None:
        """Stores (topic, partition, offset, metadata) positions for a group, all or none.

        Raises:
            UnknownTopicError, UnknownPartitionError: A position names no existing partition.
            InvalidRequestError: Bad offset or metadata longer than 4096 characters.
        """
        validate.name(group, "group")
        latest: dict[tuple[str, int], tuple[int, str]] = {}
        for item in offsets:
            if not isinstance(item, tuple | list) or len(item) != 4:
                raise InvalidRequestError(
                    f"offsets must be (topic, partition, offset, metadata) tuples, got {item!r}"
                )
            topic, partition, offset, metadata = item
            validate.partition_number(topic, partition)
            validate.integer(offset, f"offset for {topic}[{partition}]", -1)
            metadata = "" if metadata is None else metadata
            if not isinstance(metadata, str) or len(metadata) > validate.MAX_OFFSET_METADATA:
                raise InvalidRequestError(
                    f"metadata for {topic}[{partition}] must be a string of at most "
                    f"{validate.MAX_OFFSET_METADATA} characters"
                )
            latest[(topic, partition)] = (offset, metadata)
        if not latest:
            return
        async with self._write() as tx:
            for topic in sorted({t for t, _ in latest}):
                row = await tx.fetchone("SELECT partitions FROM topics WHERE name = ?", topic)
                if row is None:
                    raise UnknownTopicError(f"unknown topic {topic!r}")
                beyond = [p for t, p in latest if t == topic and p >= row[0]]
                if beyond:
                    raise UnknownPartitionError(f"topic {topic!r} has no partition {min(beyond)}")
            now = (await tx.fetchone("SELECT sh_now_ms()"))[0]  # type: ignore[index]
            await tx.executemany(
                "INSERT INTO group_offsets "
                "(group_id, topic, partition, committed_offset, metadata, committed_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (group_id, topic, partition) DO UPDATE "
                "SET committed_offset = excluded.committed_offset, "
                "metadata = excluded.metadata, committed_at = excluded.committed_at",
                [(group, t, p, o, m, now) for (t, p), (o, m) in latest.items()],
            )

    async def fetch_offsets(self, group: str, topic: str | None = None) -> list[CommittedOffset]:
        """A group's committed positions by topic and partition; empty for an unknown group."""
        sql = (
            "SELECT group_id, topic, partition, committed_offset, metadata, committed_at "
            "FROM group_offsets WHERE group_id = ?"
        )
        args: tuple[str, ...] = (group,)
        if topic is not None:
            sql += " AND topic = ?"
            args += (topic,)
        async with self._read() as tx:
            rows = await tx.fetchall(f"{sql} ORDER BY topic, partition", *args)
        return [CommittedOffset(*row) for row in rows]

    async def list_groups(self) -> list[str]:
        """Groups that have committed offsets."""
        async with self._read() as tx:
            rows = await tx.fetchall("SELECT DISTINCT group_id FROM group_offsets ORDER BY 1")
        return [row[0] for row in rows]

    async def delete_group(self, group: str) -> None:
        """Forgets a group's offsets (no-op for an unknown group)."""
        async with self._write() as tx:
            await tx.execute("DELETE FROM group_offsets WHERE group_id = ?", group)

    # ------------------------------------------------------- idempotent producers
    async def init_producer(self, producer_id: int | None = None) -> tuple[int, int]:
        """Allocates a producer id (epoch 0) or bumps an existing id's epoch, fencing the old.

        When an id's epoch is exhausted (int16 on the wire) it is parked at the maximum, which
        fences every session on it, and a fresh id is returned instead, as Kafka does.

        Raises:
            UnknownProducerError: ``producer_id`` was never allocated here.
        """
        if producer_id is not None:
            validate.integer(producer_id, "producer_id", 0)
        async with self._write() as tx:
            if producer_id is not None:
                row = await tx.fetchone(
                    "UPDATE producers SET epoch = epoch + 1, updated_at = sh_now_ms() "
                    "WHERE producer_id = ? AND epoch < ? RETURNING epoch",
                    producer_id,
                    validate.MAX_PRODUCER_EPOCH - 1,
                )
                if row is not None:
                    return producer_id, row[0]
                exhausted = await tx.fetchone(
                    "UPDATE producers SET epoch = ?, updated_at = sh_now_ms() "
                    "WHERE producer_id = ? RETURNING epoch",
                    validate.MAX_PRODUCER_EPOCH,
                    producer_id,
                )
                if exhausted is None:
                    raise UnknownProducerError(f"producer id {producer_id} was never allocated")
            row = await tx.fetchone(
                "INSERT INTO producers (epoch, updated_at) VALUES (0, sh_now_ms()) "
                "RETURNING producer_id"
            )
        assert row is not None
        return row[0], 0

    async def get_producer_state(
        self, producer_id: int, topic: str, partition: int
    ) -> ProducerPartitionState | None:
        async with self._read() as tx:
            row = await tx.fetchone(
                "SELECT producer_id, producer_epoch, topic, partition, last_sequence, last_offset "
                "FROM producer_partitions WHERE producer_id = ? AND topic = ? AND partition = ?",
                producer_id,
                topic,
                partition,
            )
        return None if row is None else ProducerPartitionState(*row)

    async def put_producer_state(self, state: ProducerPartitionState) -> None:
        """Records a producer's last sequence and offset in a partition.

        Raises:
            ProducerFencedError: ``state.producer_epoch`` is older than the id's newest epoch.
            UnknownProducerError, UnknownTopicError, UnknownPartitionError.
            InvalidRequestError: An epoch that was never initialised, or values out of range.
        """
        pid, epoch = state.producer_id, state.producer_epoch
        validate.integer(pid, "producer_id", 0)
        validate.integer(epoch, "producer_epoch", 0, validate.MAX_PRODUCER_EPOCH)
        validate.partition_number(state.topic, state.partition)
        validate.integer(state.last_sequence, "last_sequence", -1, validate.INT32_MAX)
        validate.integer(state.last_offset, "last_offset", -1)
        async with self._write() as tx:
            row = await tx.fetchone(
                f"SELECT epoch FROM producers pr WHERE producer_id = ?{self._for('SHARE', 'pr')}",
                pid,
            )
            if row is None:
                raise UnknownProducerError(f"producer id {pid} was never allocated")
            if epoch < row[0]:
                raise ProducerFencedError(
                    f"producer {pid} at epoch {epoch} is fenced: epoch {row[0]} was initialised"
                )
            if epoch > row[0]:
                raise InvalidRequestError(
                    f"producer {pid} is at epoch {row[0]}; epoch {epoch} was never initialised"
                )
            topic = await tx.fetchone("SELECT partitions FROM topics WHERE name = ?", state.topic)
            if topic is None:
                raise UnknownTopicError(f"unknown topic {state.topic!r}")
            if state.partition >= topic[0]:
                raise UnknownPartitionError(
                    f"topic {state.topic!r} has no partition {state.partition}"
                )
            await tx.execute(
                "INSERT INTO producer_partitions (producer_id, topic, partition, producer_epoch, "
                "last_sequence, last_offset) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (producer_id, topic, partition) DO UPDATE SET "
                "producer_epoch = excluded.producer_epoch, "
                "last_sequence = excluded.last_sequence, last_offset = excluded.last_offset",
                pid,
                state.topic,
                state.partition,
                epoch,
                state.last_sequence,
                state.last_offset,
            )
