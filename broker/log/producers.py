"""Idempotent producers in one partition: which of their batches are stored already, and where.

A Kafka producer with idempotence on stamps each batch with (producer id, epoch, sequence) and
retries a batch whose acknowledgement it did not get. The leader recognises the retry and
answers with the offsets the first attempt got, so the log holds every batch once. A producer
keeps up to five batches in flight, so the last five batches of each producer are remembered.

Everything here works on batch headers; records are never looked at. The table is only touched
under the partition lock: :meth:`ProducerStates.admit` checks a whole request without changing
anything (a rejected request leaves no trace) and :meth:`ProducerStates.apply` keeps the
outcome once the batches are stored.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from streamhouse.broker.log.errors import OutOfOrderSequenceError, ProducerFencedError
from streamhouse.broker.metadata import ProducerPartitionState
from streamhouse.broker.records import BatchHeader, InvalidRecordError

SEQUENCE_SPACE = 2**31  # sequences are non-negative int32 and wrap to 0 after 2**31 - 1
MAX_IN_FLIGHT = 5  # Kafka's max.in.flight.requests.per.connection limit with idempotence on
UNKNOWN = -1


def next_sequence(sequence: int, increment: int = 1) -> int:
    """Kafka's sequence arithmetic (``DefaultRecordBatch.incrementSequence``)."""
    return (sequence + increment) % SEQUENCE_SPACE


@dataclass(frozen=True)
class StoredBatch:
    """Where one producer batch went. ``first_sequence`` and ``base_offset`` are UNKNOWN for
    state loaded from the metadata store, which keeps a producer's last sequence and offset."""

    first_sequence: int
    last_sequence: int
    base_offset: int
    last_offset: int

    def matches(self, first_sequence: int, last_sequence: int) -> bool:
        return self.last_sequence == last_sequence and self.first_sequence in (
            first_sequence,
            UNKNOWN,
        )

    def base_for(self, last_offset_delta: int) -> int:
        """The original base offset; a retry has the same record count as the original."""
        if self.base_offset != UNKNOWN:
            return self.base_offset
        return self.last_offset - last_offset_delta


@dataclass
class ProducerEntry:
    """One producer's epoch and its last batches in this partition, oldest first.

    ``verified`` is False for an entry rebuilt from the WAL alone: the metadata store may know
    a later batch (written by another agent that led the partition meanwhile), so it is
    compared with the store before its first use.
    """

    epoch: int
    batches: collections.deque[StoredBatch] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_IN_FLIGHT)
    )
    verified: bool = True

    @property
    def last(self) -> StoredBatch:
        return self.batches[-1]

    def copy(self) -> ProducerEntry:
        return ProducerEntry(
            self.epoch, collections.deque(self.batches, maxlen=MAX_IN_FLIGHT), self.verified
        )

    def find(self, first_sequence: int, last_sequence: int) -> StoredBatch | None:
        for batch in self.batches:
            if batch.matches(first_sequence, last_sequence):
                return batch
        return None


@dataclass
class Admission:
    """The verdict on one append request, computed before anything is stored.

    ``base_offsets`` covers every batch in request order (a duplicate reports its original
    offset); ``new`` lists the indexes of the batches to store, at ``base_offsets[i]``.
    """

    base_offsets: list[int]
    new: list[int]
    next_offset: int
    last_offset: int
    staged: dict[int, ProducerEntry]

    @property
    def duplicates_only(self) -> bool:
        return not self.new

    @classmethod
    def plain(cls, headers: Sequence[BatchHeader], first_offset: int) -> Admission:
        """A request without producer ids: every batch is new, offsets follow each other."""
        bases: list[int] = []
        offset = first_offset
        for header in headers:
            bases.append(offset)
            offset += header.last_offset_delta + 1
        return cls(bases, list(range(len(bases))), offset, offset - 1, {})


class ProducerStates:
    """The per-producer state of one partition, as its leader keeps it in memory."""

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self._entries: dict[int, ProducerEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, producer_id: int) -> ProducerEntry | None:
        return self._entries.get(producer_id)

    def to_look_up(self, headers: Iterable[BatchHeader]) -> set[int]:
        """Producer ids of ``headers`` whose state must first be read from the metadata store."""
        out: set[int] = set()
        for header in headers:
            pid = header.producer_id
            if pid >= 0:
                entry = self._entries.get(pid)
                if entry is None or not entry.verified:
                    out.add(pid)
        return out

    def adopt(self, producer_id: int, stored: ProducerPartitionState | None) -> None:
        """Merges what the metadata store knows; the later of memory and store wins."""
        entry = self._entries.get(producer_id)
        if entry is not None and entry.verified:
            return  # memory is newer: this leader wrote since the lookup started
        if stored is not None and (entry is None or stored.last_offset > entry.last.last_offset):
            entry = ProducerEntry(stored.producer_epoch)
            entry.batches.append(
                StoredBatch(UNKNOWN, stored.last_sequence, UNKNOWN, stored.last_offset)
            )
        if entry is not None:
            entry.verified = True
            self._entries[producer_id] = entry

    def admit(self, headers: Sequence[BatchHeader], first_offset: int) -> Admission:
        """Checks every batch of a request against the producers' state; changes nothing.

        Raises:
            ProducerFencedError: a batch's epoch is older than the producer's known epoch.
            OutOfOrderSequenceError: a batch neither continues its producer's sequence nor
                repeats one of its last five batches.
            InvalidRecordError: a producer id without a valid epoch or sequence.
        """
        staged: dict[int, ProducerEntry] = {}
        bases: list[int] = []
        new: list[int] = []
        offset = first_offset
        last_offset = -1
        for index, header in enumerate(headers):
            delta = header.last_offset_delta
            pid = header.producer_id
            if pid >= 0:
                entry = staged.get(pid)
                if entry is None:
                    current = self._entries.get(pid)
                    entry = current.copy() if current is not None else None
                duplicate, entry = self._check(header, entry)
                staged[pid] = entry
                if duplicate is not None:
                    base = duplicate.base_for(delta)
                    bases.append(base)
                    last_offset = max(last_offset, base + delta)
                    continue
                entry.batches.append(
                    StoredBatch(
                        header.base_sequence,
                        next_sequence(header.base_sequence, delta),
                        offset,
                        offset + delta,
                    )
                )
            bases.append(offset)
            new.append(index)
            last_offset = max(last_offset, offset + delta)
            offset += delta + 1
        return Admission(bases, new, offset, last_offset, staged)

    def _check(
        self, header: BatchHeader, entry: ProducerEntry | None
    ) -> tuple[StoredBatch | None, ProducerEntry]:
        """(the original when ``header`` is a retry, the entry the batch continues)."""
        pid, epoch, first = header.producer_id, header.producer_epoch, header.base_sequence
        if epoch < 0 or first < 0:
            raise InvalidRecordError(
                f"batch of producer {pid} has producer epoch {epoch} and base sequence {first}: "
                "an idempotent batch needs both to be non-negative"
            )
        if entry is None or epoch > entry.epoch:
            if first != 0:
                raise OutOfOrderSequenceError(self.topic, self.partition, pid, 0, first)
            return None, ProducerEntry(epoch)
        if epoch < entry.epoch:
            raise ProducerFencedError(self.topic, self.partition, pid, epoch, entry.epoch)
        duplicate = entry.find(first, next_sequence(first, header.last_offset_delta))
        if duplicate is not None:
            return duplicate, entry
        expected = next_sequence(entry.last.last_sequence)
        if first != expected:
            raise OutOfOrderSequenceError(self.topic, self.partition, pid, expected, first)
        return None, entry

    def apply(self, admission: Admission) -> None:
        """Keeps the state of an admitted request once its batches are stored."""
        self._entries.update(admission.staged)

    def restore(self, header: BatchHeader) -> None:
        """Rebuilds state from a batch replayed from the WAL (already stamped with offsets)."""
        pid = header.producer_id
        if pid < 0 or header.base_sequence < 0:
            return
        entry = self._entries.get(pid)
        if entry is None or header.producer_epoch > entry.epoch:
            entry = ProducerEntry(header.producer_epoch)
            self._entries[pid] = entry
        elif header.producer_epoch < entry.epoch:
            return
        entry.verified = False
        entry.batches.append(
            StoredBatch(
                header.base_sequence,
                next_sequence(header.base_sequence, header.last_offset_delta),
                header.base_offset,
                header.last_offset,
            )
        )
