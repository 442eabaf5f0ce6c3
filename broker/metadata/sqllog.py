"""The fencing core in SQL: leases with epochs, and segment commits that check them.

An agent writes a partition only while it holds the lease; every commit re-reads the lease
under the partition's row lock, in the same transaction as the insert, so a paused or
partitioned agent can never commit over its successor.
"""

from __future__ import annotations

from collections.abc import Sequence

from streamhouse.broker.metadata import validate
from streamhouse.broker.metadata.errors import (
    InvalidRequestError,
    LeaseHeldError,
    SegmentConflictError,
    UnknownPartitionError,
    UnknownTopicError,
)
from streamhouse.broker.metadata.models import Lease, PartitionState, SegmentRecord
from streamhouse.broker.metadata.sqlbase import SEGMENT_COLUMNS, SqlStoreBase, fenced_error


class LogMixin(SqlStoreBase):
    """Segment commits, retention deletes and partition leases."""

    # ------------------------------------------------------------------ segments
    async def commit_segment(
        self, segment: SegmentRecord, *, holder: str, epoch: int
    ) -> PartitionState:
        """Makes an uploaded segment visible, if and only if the writer still owns the partition.

        One transaction: the partition row is locked; the lease must name ``holder`` at
        ``epoch`` (a lease that expired but that nobody took over still counts: the epoch,
        not the clock, fences); the segment must start exactly at the partition's next
        offset. Then the row is inserted and ``next_offset`` moves past it.

        Raises:
            FencedError: Another holder or a newer epoch owns the partition; nothing written.
            SegmentConflictError: The segment would leave a gap or overlap; nothing written.
            UnknownTopicError, UnknownPartitionError, InvalidRequestError.
        """
        validate.name(holder, "holder")
        validate.integer(epoch, "epoch", 1)
        validate.segment(segment, epoch)
        topic, partition = segment.topic, segment.partition
        async with self._write() as tx:
            topic_id, log_start, next_offset, now = await self._lock_partition(tx, topic, partition)
            lease = await tx.fetchone(
                "SELECT holder, epoch FROM leases WHERE topic_id = ? AND partition = ?",
                topic_id,
                partition,
            )
            if lease is None or lease[0] != holder or lease[1] != epoch:
                raise fenced_error(topic, partition, holder, epoch, lease)
            if segment.base_offset != next_offset:
                kind = "a gap" if segment.base_offset > next_offset else "an overlap"
                raise SegmentConflictError(
                    f"segment {segment.object_key!r} of {topic}[{partition}] starts at "
                    f"{segment.base_offset} but the partition's next offset is {next_offset} "
                    f"({kind})"
                )
            await tx.execute(
                f"INSERT INTO segments (topic_id, partition, {SEGMENT_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                topic_id,
                partition,
                segment.base_offset,
                segment.last_offset,
                segment.record_count,
                segment.min_timestamp,
                segment.max_timestamp,
                segment.size_bytes,
                segment.object_key,
                segment.writer_epoch,
                segment.created_at or now,
            )
            next_offset = segment.last_offset + 1
            await tx.execute(
                "UPDATE partitions SET next_offset = ? WHERE topic_id = ? AND partition = ?",
                next_offset,
                topic_id,
                partition,
            )
        return PartitionState(topic, partition, log_start, next_offset)

    async def list_segments(self, topic: str, partition: int) -> list[SegmentRecord]:
        """The partition's committed segments by base offset."""
        validate.partition_number(topic, partition)
        async with self._read() as tx:
            row = await tx.fetchone(
                "SELECT p.topic_id FROM partitions p JOIN topics t ON t.topic_id = p.topic_id "
                "WHERE t.name = ? AND p.partition = ?",
                topic,
                partition,
            )
            if row is None:
                await self._missing(tx, topic, partition)
            rows = await tx.fetchall(
                f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE topic_id = ? AND partition = ? "
                "ORDER BY base_offset",
                row[0],
                partition,
            )
        return [SegmentRecord(topic, partition, *r) for r in rows]

    async def delete_segments(
        self, topic: str, partition: int, base_offsets: Sequence[int], *, new_log_start: int
    ) -> PartitionState:
        """Retention: removes segment rows and raises the log start offset.

        The log start becomes ``max(current, new_log_start)``. Every listed segment must end
        below it, so no reader can land in a hole; base offsets that are already gone are
        ignored, which makes a retried call harmless.

        Raises:
            InvalidRequestError: ``new_log_start`` is past the committed end, or a listed
                segment reaches the new log start; nothing is deleted.
        """
        validate.integer(new_log_start, "new_log_start", 0)
        wanted = {validate.integer(b, "base offset", 0) for b in base_offsets}
        async with self._write() as tx:
            topic_id, log_start, next_offset, _ = await self._lock_partition(tx, topic, partition)
            if new_log_start > next_offset:
                raise InvalidRequestError(
                    f"cannot move the log start of {topic}[{partition}] to {new_log_start}: "
                    f"past the committed end {next_offset}"
                )
            start = max(log_start, new_log_start)
            doomed: list[tuple[int, int, int]] = []
            if wanted:
                rows = await tx.fetchall(
                    "SELECT base_offset, last_offset FROM segments "
                    "WHERE topic_id = ? AND partition = ? AND base_offset <= ?",
                    topic_id,
                    partition,
                    max(wanted),
                )
                for base, last in rows:
                    if base not in wanted:
                        continue
                    if last >= start:
                        raise InvalidRequestError(
                            f"segment {base}..{last} of {topic}[{partition}] is not wholly "
                            f"below the log start {start}; refusing to leave a hole"
                        )
                    doomed.append((topic_id, partition, base))
            if doomed:
                await tx.executemany(
                    "DELETE FROM segments WHERE topic_id = ? AND partition = ? AND base_offset = ?",
                    doomed,
                )
            if start != log_start:
                await tx.execute(
                    "UPDATE partitions SET log_start_offset = ? "
                    "WHERE topic_id = ? AND partition = ?",
                    start,
                    topic_id,
                    partition,
                )
        return PartitionState(topic, partition, start, next_offset)

    # -------------------------------------------------------------------- leases
    async def acquire_lease(self, topic: str, partition: int, holder: str, ttl_ms: int) -> Lease:
        """Takes the partition's lease for ``ttl_ms`` (store clock) and raises its epoch.

        Succeeds when there is no lease, it has expired, or ``holder`` already holds it; every
        success increments the epoch, fencing whatever wrote under the previous one.

        Raises:
            LeaseHeldError: Another holder's lease is still live.
        """
        validate.name(holder, "holder")
        validate.integer(ttl_ms, "ttl_ms", 1)
        async with self._write() as tx:
            topic_id, _, _, now = await self._lock_partition(tx, topic, partition)
            lease = await tx.fetchone(
                "SELECT holder, epoch, expires_at FROM leases WHERE topic_id = ? AND partition = ?",
                topic_id,
                partition,
            )
            if lease is not None and lease[0] != holder and lease[2] > now:
                raise LeaseHeldError(
                    f"{topic}[{partition}] is leased to {lease[0]!r} at epoch {lease[1]} for "
                    f"another {lease[2] - now} ms"
                )
            epoch = (lease[1] if lease is not None else 0) + 1
            expires_at = now + ttl_ms
            await tx.execute(
                "INSERT INTO leases (topic_id, partition, holder, epoch, expires_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (topic_id, partition) DO UPDATE SET "
                "holder = excluded.holder, epoch = excluded.epoch, "
                "expires_at = excluded.expires_at",
                topic_id,
                partition,
                holder,
                epoch,
                expires_at,
            )
        return Lease(topic, partition, holder, epoch, expires_at)

    async def renew_lease(
        self, topic: str, partition: int, holder: str, epoch: int, ttl_ms: int
    ) -> Lease:
        """Extends the lease to now + ``ttl_ms`` while it is still ``holder``'s at ``epoch``.

        Raises:
            FencedError: Someone else acquired it since (or it never was ours).
        """
        validate.integer(ttl_ms, "ttl_ms", 1)
        async with self._write() as tx:
            topic_id, _, _, now = await self._lock_partition(tx, topic, partition)
            lease = await tx.fetchone(
                "SELECT holder, epoch FROM leases WHERE topic_id = ? AND partition = ?",
                topic_id,
                partition,
            )
            if lease is None or lease[0] != holder or lease[1] != epoch:
                raise fenced_error(topic, partition, holder, epoch, lease)
            await tx.execute(
                "UPDATE leases SET expires_at = ? WHERE topic_id = ? AND partition = ?",
                now + ttl_ms,
                topic_id,
                partition,
            )
        return Lease(topic, partition, holder, epoch, now + ttl_ms)

    async def release_lease(self, topic: str, partition: int, holder: str, epoch: int) -> None:
        """Expires the lease now so a successor need not wait; keeps the epoch.

        A no-op unless ``holder`` holds it at ``epoch`` (also when the topic is gone): the
        caller's goal, not holding the lease, is already met.
        """
        try:
            async with self._write() as tx:
                topic_id, _, _, now = await self._lock_partition(tx, topic, partition)
                await tx.execute(
                    "UPDATE leases SET expires_at = ? WHERE topic_id = ? AND partition = ? "
                    "AND holder = ? AND epoch = ? AND expires_at > ?",
                    now,
                    topic_id,
                    partition,
                    holder,
                    epoch,
                    now,
                )
        except (UnknownTopicError, UnknownPartitionError):
            return

    async def get_lease(self, topic: str, partition: int) -> Lease | None:
        """The partition's lease, live or expired; None if it was never acquired."""
        validate.partition_number(topic, partition)
        async with self._read() as tx:
            row = await tx.fetchone(
                "SELECT p.topic_id, l.holder, l.epoch, l.expires_at FROM partitions p "
                "JOIN topics t ON t.topic_id = p.topic_id LEFT JOIN leases l "
                "ON l.topic_id = p.topic_id AND l.partition = p.partition "
                "WHERE t.name = ? AND p.partition = ?",
                topic,
                partition,
            )
            if row is None:
                await self._missing(tx, topic, partition)
        if row[1] is None:
            return None
        return Lease(topic, partition, row[1], row[2], row[3])

    async def list_leases(self, *, holder: str | None = None) -> list[Lease]:
        """Leases by topic and partition, expired ones included (compare with :meth:`now_ms`):
        until someone else acquires it, an expired lease's holder may still commit."""
        sql = (
            "SELECT t.name, l.partition, l.holder, l.epoch, l.expires_at FROM leases l "
            "JOIN topics t ON t.topic_id = l.topic_id"
        )
        args: tuple[str, ...] = ()
        if holder is not None:
            sql += " WHERE l.holder = ?"
            args = (holder,)
        async with self._read() as tx:
            rows = await tx.fetchall(f"{sql} ORDER BY t.name, l.partition", *args)
        return [Lease(*row) for row in rows]
