"""The `streamctl` command tree: global options, then topic, group, produce, consume and sql."""

from __future__ import annotations

from typing import Annotated

import typer
from streamhouse.workbench.streamctl import groups, topics
from streamhouse.workbench.streamctl.consume import consume
from streamhouse.workbench.streamctl.output import Output
from streamhouse.workbench.streamctl.produce import produce
from streamhouse.workbench.streamctl.session import DEFAULT_SERVER, Session
from streamhouse.workbench.streamctl.sql import sql

app = typer.Typer(
    name="streamctl",
    help="The terminal client of a running StreamHouse server (gRPC).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(topics.app, name="topic")
app.add_typer(groups.app, name="group")
app.command("produce")(produce)
app.command("consume")(consume)
app.command("sql")(sql)


@app.callback()
def options(
    ctx: typer.Context,
    server: Annotated[
        str,
        typer.Option(
            "--server", "-s", envvar="STREAMHOUSE_SERVER", help="gRPC address of an agent"
        ),
    ] = DEFAULT_SERVER,
    output: Annotated[
        Output, typer.Option("--output", "-o", help="how listings and descriptions are shown")
    ] = Output.TABLE,
) -> None:
    """Exit codes: 0 ok, 1 the operation failed, 2 usage error, 3 server unreachable."""
    ctx.obj = Session(server, output)
