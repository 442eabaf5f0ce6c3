"""`streamctl sql`: point-in-time SQL over the REST API, one-shot, piped or interactive.

- `streamctl sql "SELECT ..."` runs one statement;
- `streamctl sql < script.sql` runs the `;`-separated statements of stdin in order, stopping
  at the first error;
- `streamctl sql` on a terminal opens the shell (`streamhouse.workbench.streamctl.shell`).

SQL runs in the server's query service behind `POST /api/v1/sql`, so this command needs the
HTTP address (`--http` / STREAMHOUSE_HTTP), not the gRPC one. A SQL error exits 1 with the
server's message and the line/column it points at; an unreachable server exits 3.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from streamhouse.workbench.streamctl.session import EXIT_FAILED, EXIT_UNREACHABLE
from streamhouse.workbench.streamctl.shell.client import DEFAULT_HTTP
from streamhouse.workbench.streamctl.shell.render import Format

# Interrupted by Ctrl-C, as shells report it (128 + SIGINT).
EXIT_INTERRUPTED = 130


def sql(
    statement: Annotated[
        str | None,
        typer.Argument(help="one SQL statement; without it, a shell (or stdin's script)"),
    ] = None,
    format_: Annotated[
        Format, typer.Option("--format", "-f", help="table, json (the API's document) or csv")
    ] = Format.TABLE,
    http: Annotated[
        str,
        typer.Option("--http", envvar="STREAMHOUSE_HTTP", help="HTTP base URL of an agent"),
    ] = DEFAULT_HTTP,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each answer")] = 60.0,
) -> None:
    """Runs point-in-time SQL (SELECT, SHOW, DESCRIBE, EXPLAIN): one statement, a script on
    stdin, or an interactive shell when stdin is a terminal."""
    import asyncio

    from streamhouse.workbench.streamctl.shell.client import (
        ServerUnreachable,
        SqlClient,
        SqlFailed,
    )
    from streamhouse.workbench.streamctl.shell.render import error_report, print_result
    from streamhouse.workbench.streamctl.shell.runner import Settings, Shell

    client = SqlClient(http, timeout)
    if statement is not None:

        async def one() -> dict:
            try:
                return await client.run(statement)
            finally:
                await client.aclose()

        try:
            document = asyncio.run(one())
        except ServerUnreachable as exc:
            sys.stderr.write(f"error: {exc}\n")
            raise typer.Exit(EXIT_UNREACHABLE) from None
        except SqlFailed as failure:
            sys.stderr.write(error_report(failure, statement))
            raise typer.Exit(EXIT_FAILED) from None
        print_result(document, format_)
        return
    settings = Settings(format=format_)
    try:
        if sys.stdin.isatty():
            from streamhouse.workbench.streamctl.shell.repl import interactive

            code = asyncio.run(interactive(Shell(client, settings, completing=True)))
        else:
            from streamhouse.workbench.streamctl.shell.script import run_script

            code = asyncio.run(run_script(Shell(client, settings), sys.stdin.read()))
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    raise typer.Exit(code)
