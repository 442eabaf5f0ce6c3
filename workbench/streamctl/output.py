"""How results are shown: a rich table for people, one JSON document for scripts.

Commands build a plain document (dicts, lists, numbers, strings) once; the JSON form prints
it as it is, so scripts see the same shape the table was drawn from.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table


class Output(enum.StrEnum):
    TABLE = "table"
    JSON = "json"


def console() -> Console:
    """A console that never wraps a table into unreadable columns when piped."""
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def emit(document: Any, output: Output, table: Callable[[Any], Table | str]) -> None:
    if output is Output.JSON:
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return
    console().print(table(document))


def simple_table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> Table:
    view = Table(title=title, title_justify="left")
    for column in columns:
        view.add_column(column, overflow="fold")
    for row in rows:
        view.add_row(*(_cell(row.get(column)) for column in columns))
    return view


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(_cell(v) for v in value)
    return str(value)
