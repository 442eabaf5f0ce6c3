"""What `streamctl consume` was asked to do, checked and ready for the follow loop."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RecordFormat(enum.StrEnum):
    JSON = "json"
    RAW = "raw"
    TABLE = "table"


@dataclass(frozen=True)
class Plan:
    topic: str
    group: str | None
    partitions: list[int]  # empty: every partition (or the group's assignment)
    from_beginning: bool
    offset: int | None
    limit: int | None
    exit_at_end: bool
    form: RecordFormat
