"""How SQL answers and SQL errors are printed, by the one-shot command and the shell alike.

Tables are for people: aligned columns, then "N rows (M ms)". JSON is the API's document as
it came; CSV is a header and one line per row, nested values as JSON. Cells are shown as
plain text (never rich markup), so data like "[red]" prints as it is.
"""

from __future__ import annotations

import csv
import enum
import json
import sys
from typing import Any

from rich.table import Table
from rich.text import Text
from streamhouse.workbench.streamctl.output import console
from streamhouse.workbench.streamctl.shell.client import SqlFailed


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def cell_text(value: Any) -> str:
    """A cell as text: nested values as JSON, null as empty."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def summary(document: dict[str, Any], timing: bool = True) -> str:
    """`3 rows (12 ms)`, with a note when the server cut the result short."""
    count = document.get("row_count", len(document.get("rows", [])))
    text = f"{count} row" if count == 1 else f"{count} rows"
    if timing:
        text += f" ({document.get('elapsed_ms', 0):.0f} ms)"
    if document.get("truncated"):
        text += " (truncated: the query has more rows)"
    return text


def print_result(document: dict[str, Any], fmt: Format, timing: bool = True) -> None:
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    elif fmt is Format.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([c["name"] for c in document["columns"]])
        writer.writerows([cell_text(v) for v in row] for row in document["rows"])
    else:
        console().print(_table(document))
        sys.stdout.write(summary(document, timing) + "\n")
    sys.stdout.flush()


def _table(document: dict[str, Any]) -> Table:
    view = Table()
    for column in document["columns"]:
        view.add_column(Text(column["name"]), overflow="fold")
    for row in document["rows"]:
        view.add_row(*(Text(cell_text(v)) for v in row))
    return view


def error_report(failure: SqlFailed, statement: str | None = None) -> str:
    """`error: <message> (line L, column C)`, then the statement's line with a caret under C."""
    if failure.line is None or failure.column is None:
        return f"error: {failure.message}\n"
    report = f"error: {failure.message} (line {failure.line}, column {failure.column})\n"
    lines = (statement or "").split("\n")
    if not 1 <= failure.line <= len(lines):
        return report
    line = lines[failure.line - 1]
    # Keep tabs in the padding so the caret lines up however wide the terminal draws them.
    padding = "".join("\t" if ch == "\t" else " " for ch in line[: failure.column - 1])
    return f"{report}  {line}\n  {padding}^\n"
