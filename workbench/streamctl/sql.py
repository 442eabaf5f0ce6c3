"""`streamctl sql "SELECT ..."`: one point-in-time statement over the REST API.

SQL runs in the server's query service behind `POST /api/v1/sql`, so this command needs the
HTTP address (`--http` / STREAMHOUSE_HTTP), not the gRPC one. A SQL error exits 1 with the
server's message and the line/column it points at; an unreachable server exits 3.
"""

from __future__ import annotations

import csv
import enum
import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table
from streamhouse.workbench.streamctl.output import console
from streamhouse.workbench.streamctl.session import EXIT_UNREACHABLE, fail

DEFAULT_HTTP = "http://127.0.0.1:8080"


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def _text(value: Any) -> str:
    """A cell as text: nested values as JSON, null as empty."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _table(document: dict[str, Any]) -> Table:
    view = Table(caption=_caption(document), caption_justify="left")
    for column in document["columns"]:
        view.add_column(column["name"], overflow="fold")
    for row in document["rows"]:
        view.add_row(*(_text(v) for v in row))
    return view


def _caption(document: dict[str, Any]) -> str:
    more = " (truncated: the query has more rows)" if document["truncated"] else ""
    return f"{document['row_count']} rows in {document['elapsed_ms']:.0f} ms{more}"


def _csv(document: dict[str, Any]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([c["name"] for c in document["columns"]])
    writer.writerows([_text(v) for v in row] for row in document["rows"])


def _where(error: dict[str, Any]) -> str:
    if error.get("line") is None:
        return ""
    return f" (line {error['line']}, column {error['column']})"


def sql(
    statement: Annotated[str, typer.Argument(help="one SQL statement, e.g. 'SHOW TOPICS'")],
    format_: Annotated[
        Format, typer.Option("--format", "-f", help="table, json (the API's document) or csv")
    ] = Format.TABLE,
    http: Annotated[
        str,
        typer.Option("--http", envvar="STREAMHOUSE_HTTP", help="HTTP base URL of an agent"),
    ] = DEFAULT_HTTP,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the answer")] = 60.0,
) -> None:
    """Runs one point-in-time SQL statement (SELECT, SHOW TOPICS, DESCRIBE, EXPLAIN)."""
    import httpx

    try:
        response = httpx.post(
            f"{http.rstrip('/')}/api/v1/sql", json={"sql": statement}, timeout=timeout
        )
    except httpx.TransportError as exc:
        sys.stderr.write(f"error: cannot reach {http}: {exc}\n")
        raise typer.Exit(EXIT_UNREACHABLE) from None
    try:
        document = response.json()
    except ValueError:
        fail(f"HTTP {response.status_code}: {response.text[:200]}")
    if response.status_code != 200:
        error = document.get("error", {}) if isinstance(document, dict) else {}
        fail(f"{error.get('message', response.text[:200])}{_where(error)}")
    if format_ is Format.JSON:
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    elif format_ is Format.CSV:
        _csv(document)
    else:
        console().print(_table(document))
