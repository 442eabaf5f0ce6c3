"""`streamctl consume`: print a topic's records as JSON lines, raw values or a table."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from streamhouse.workbench.streamctl.plan import Plan, RecordFormat
from streamhouse.workbench.streamctl.session import session


def consume(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="the topic to read")],
    from_beginning: Annotated[
        bool,
        typer.Option(
            "--from-beginning", help="start at the earliest record (group: if none committed)"
        ),
    ] = False,
    offset: Annotated[
        int | None, typer.Option("--offset", min=0, help="start every partition at this offset")
    ] = None,
    partition: Annotated[
        list[int] | None, typer.Option("--partition", "-p", min=0, help="only this partition")
    ] = None,
    group: Annotated[
        str | None, typer.Option("--group", "-g", help="consume as a member of this group")
    ] = None,
    max_records: Annotated[
        int | None, typer.Option("--max", min=1, help="stop after this many records")
    ] = None,
    exit_at_end: Annotated[
        bool,
        typer.Option("--exit-at-end", help="stop at the end offsets the topic had at start"),
    ] = False,
    form: Annotated[RecordFormat, typer.Option("--format")] = RecordFormat.JSON,
) -> None:
    """Print records of a topic as they arrive (until Ctrl-C, --max or --exit-at-end)."""
    current = session(ctx)
    if offset is not None and from_beginning:
        raise typer.BadParameter("use either --offset or --from-beginning", param_hint="--offset")
    if group is not None and (offset is not None or partition):
        raise typer.BadParameter(
            "a group member starts at the group's committed offsets on the partitions the "
            "group assigns; --offset and --partition need no --group",
            param_hint="--group",
        )
    plan = Plan(
        topic,
        group,
        sorted(set(partition or [])),
        from_beginning,
        offset,
        max_records,
        exit_at_end,
        form,
    )
    from streamhouse.workbench.streamctl.following import follow

    asyncio.run(follow(current.server, plan))
