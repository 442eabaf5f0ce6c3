"""How `streamctl consume` prints records: JSON lines, raw values, or a rich table.

JSON lines are lossless: keys, values and header values are text when they are valid UTF-8
and base64 otherwise, flagged per field (``"value_encoding": "base64"``), so a script can
always get the exact bytes back.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table
from streamhouse.workbench.streamctl.output import console
from streamhouse.workbench.streamctl.plan import RecordFormat

if TYPE_CHECKING:
    from streamhouse.broker.client import ConsumerRecord


def _text(data: bytes | None) -> tuple[str | None, bool]:
    """(text, is_base64)."""
    if data is None:
        return None, False
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), True


def _field(document: dict[str, Any], name: str, data: bytes | None) -> None:
    text, encoded = _text(data)
    document[name] = text
    if encoded:
        document[f"{name}_encoding"] = "base64"


def record_document(record: ConsumerRecord) -> dict[str, Any]:
    document: dict[str, Any] = {
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp_ms,
    }
    _field(document, "key", record.key)
    _field(document, "value", record.value)
    headers = []
    for name, data in record.headers:
        header: dict[str, Any] = {"key": name}
        _field(header, "value", data)
        headers.append(header)
    document["headers"] = headers
    return document


def write_records(records: Sequence[ConsumerRecord], form: RecordFormat) -> None:
    if not records:
        return
    if form is RecordFormat.JSON:
        lines = (json.dumps(record_document(r), ensure_ascii=False) for r in records)
        sys.stdout.write("\n".join(lines) + "\n")
    elif form is RecordFormat.RAW:
        sys.stdout.flush()
        sys.stdout.buffer.write(b"\n".join(r.value or b"" for r in records) + b"\n")
    else:
        console().print(_table(records))
    sys.stdout.flush()


def _readable(data: bytes | None) -> str:
    return "" if data is None else data.decode("utf-8", errors="replace")


def _table(records: Sequence[ConsumerRecord]) -> Table:
    view = Table("partition", "offset", "timestamp", "key", "value", "headers")
    for r in records:
        stamp = datetime.fromtimestamp(r.timestamp_ms / 1000, UTC).isoformat(
            timespec="milliseconds"
        )
        headers = ", ".join(f"{k}={_readable(v)}" for k, v in r.headers)
        view.add_row(
            str(r.partition), str(r.offset), stamp, _readable(r.key), _readable(r.value), headers
        )
    return view
