"""Topics and their partitions, in SQL both stores run."""

from __future__ import annotations

from collections.abc import Mapping

from streamhouse.broker.metadata import validate
from streamhouse.broker.metadata.config import TopicConfig
from streamhouse.broker.metadata.errors import (
    InvalidPartitionsError,
    InvalidRequestError,
    TopicExistsError,
    UnknownTopicError,
)
from streamhouse.broker.metadata.models import PartitionState, SegmentRecord, Topic
from streamhouse.broker.metadata.sqlbase import (
    SEGMENT_COLUMNS,
    TOPIC_SELECT,
    DuplicateKeyError,
    SqlStoreBase,
    config_json,
    topic_from_row,
)


class TopicsMixin(SqlStoreBase):
    """Create, describe, reconfigure, grow and delete topics; read partition offsets."""

    # -------------------------------------------------------------------- topics
    async def create_topic(
        self, name: str, partitions: int, config: TopicConfig | None = None
    ) -> Topic:
        """Creates a topic with ``partitions`` empty partitions.

        Raises:
            InvalidTopicError, InvalidPartitionsError, InvalidConfigError: Bad arguments.
            TopicExistsError: The name is taken.
        """
        validate.topic_name(name)
        validate.partition_count(partitions, f"create topic {name!r}")
        config = TopicConfig() if config is None else config
        if not isinstance(config, TopicConfig):
            raise InvalidRequestError(f"config must be a TopicConfig, got {type(config).__name__}")
        async with self._write() as tx:
            if await tx.fetchone("SELECT 1 FROM topics WHERE name = ?", name) is not None:
                raise TopicExistsError(f"topic {name!r} already exists")
            try:
                row = await tx.fetchone(
                    "INSERT INTO topics (name, partitions, config, created_at) "
                    "VALUES (?, ?, ?, sh_now_ms()) RETURNING topic_id, created_at",
                    name,
                    partitions,
                    config_json(config),
                )
            except DuplicateKeyError:  # created concurrently by another process
                raise TopicExistsError(f"topic {name!r} already exists") from None
            assert row is not None
            await tx.executemany(
                "INSERT INTO partitions (topic_id, partition) VALUES (?, ?)",
                [(row[0], p) for p in range(partitions)],
            )
        return Topic(name, row[0], partitions, config, row[1])

    async def get_topic(self, name: str) -> Topic:
        async with self._read() as tx:
            row = await tx.fetchone(f"{TOPIC_SELECT} WHERE t.name = ?", name)
        if row is None:
            raise UnknownTopicError(f"unknown topic {name!r}")
        return topic_from_row(row)

    async def list_topics(self) -> list[Topic]:
        async with self._read() as tx:
            rows = await tx.fetchall(f"{TOPIC_SELECT} ORDER BY t.name")
        return [topic_from_row(row) for row in rows]

    async def update_topic_config(
        self, name: str, changes: Mapping[str, str | int | None]
    ) -> Topic:
        """Applies Kafka-style config changes (see :meth:`TopicConfig.with_changes`)."""
        async with self._write() as tx:
            topic = await self._lock_topic(tx, name)
            config = topic.config.with_changes(changes)
            await tx.execute(
                "UPDATE topics SET config = ? WHERE topic_id = ?",
                config_json(config),
                topic.topic_id,
            )
        return Topic(topic.name, topic.topic_id, topic.partitions, config, topic.created_at)

    async def delete_topic(self, name: str) -> list[SegmentRecord]:
        """Deletes the topic with its partitions, leases, segments, group offsets and producer
        states; returns the segments so the caller can delete their objects."""
        async with self._write() as tx:
            topic = await self._lock_topic(tx, name)
            # Wait for in-flight commits before listing, so none of their segments is missed.
            await tx.fetchall(
                "SELECT partition FROM partitions p "
                f"WHERE p.topic_id = ?{self._for('UPDATE', 'p')}",
                topic.topic_id,
            )
            rows = await tx.fetchall(
                f"SELECT partition, {SEGMENT_COLUMNS} FROM segments WHERE topic_id = ? "
                "ORDER BY partition, base_offset",
                topic.topic_id,
            )
            await tx.execute("DELETE FROM group_offsets WHERE topic = ?", name)
            await tx.execute("DELETE FROM producer_partitions WHERE topic = ?", name)
            await tx.execute("DELETE FROM topics WHERE topic_id = ?", topic.topic_id)
        return [SegmentRecord(name, row[0], *row[1:]) for row in rows]

    async def add_partitions(self, name: str, total: int) -> Topic:
        """Grows the topic to ``total`` partitions; the new ones start empty at offset 0.

        Raises:
            InvalidPartitionsError: ``total`` is not larger than the current count.
        """
        async with self._write() as tx:
            topic = await self._lock_topic(tx, name)
            validate.partition_count(total, f"add partitions to {name!r}")
            if total <= topic.partitions:
                raise InvalidPartitionsError(
                    f"topic {name!r} has {topic.partitions} partitions; the new total must be "
                    f"larger, got {total}"
                )
            await tx.executemany(
                "INSERT INTO partitions (topic_id, partition) VALUES (?, ?)",
                [(topic.topic_id, p) for p in range(topic.partitions, total)],
            )
            await tx.execute(
                "UPDATE topics SET partitions = ? WHERE topic_id = ?", total, topic.topic_id
            )
        return Topic(topic.name, topic.topic_id, total, topic.config, topic.created_at)

    # ---------------------------------------------------------------- partitions
    async def get_partition(self, topic: str, partition: int) -> PartitionState:
        validate.partition_number(topic, partition)
        async with self._read() as tx:
            row = await tx.fetchone(
                "SELECT p.log_start_offset, p.next_offset "
                "FROM partitions p JOIN topics t ON t.topic_id = p.topic_id "
                "WHERE t.name = ? AND p.partition = ?",
                topic,
                partition,
            )
            if row is None:
                await self._missing(tx, topic, partition)
        return PartitionState(topic, partition, row[0], row[1])

    async def list_partitions(self, topic: str) -> list[PartitionState]:
        async with self._read() as tx:
            row = await tx.fetchone("SELECT topic_id FROM topics WHERE name = ?", topic)
            if row is None:
                raise UnknownTopicError(f"unknown topic {topic!r}")
            rows = await tx.fetchall(
                "SELECT partition, log_start_offset, next_offset FROM partitions "
                "WHERE topic_id = ? ORDER BY partition",
                row[0],
            )
        return [PartitionState(topic, *r) for r in rows]
