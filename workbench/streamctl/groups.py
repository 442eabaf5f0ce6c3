"""`streamctl group ...`: list, describe with lag, reset offsets, delete."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.text import Text
from streamhouse.workbench.streamctl.args import parse_timestamp
from streamhouse.workbench.streamctl.output import Output, emit, simple_table
from streamhouse.workbench.streamctl.session import fail, say, session

if TYPE_CHECKING:
    from streamhouse.broker.client import GroupDescription

app = typer.Typer(
    help="Inspect consumer groups, move their offsets, delete them.", no_args_is_help=True
)

OutputOption = Annotated[
    Output | None, typer.Option("--output", "-o", help="table or json (default: the global one)")
]
LAG_COLUMNS = ["topic", "partition", "committed_offset", "end_offset", "lag", "member_id"]


class ResetTo(enum.StrEnum):
    EARLIEST = "earliest"
    LATEST = "latest"
    OFFSET = "offset"
    TIMESTAMP = "timestamp"


def description_document(described: GroupDescription) -> dict[str, Any]:
    members = []
    for member in described.members:
        assignment: dict[str, list[int]] = {}
        for tp in member.assignment:
            assignment.setdefault(tp.topic, []).append(tp.partition)
        members.append(
            {
                "member_id": member.member_id,
                "client_id": member.client_id,
                "client_host": member.client_host,
                "assignment": {t: sorted(p) for t, p in sorted(assignment.items())},
            }
        )
    return {
        "group": described.group,
        "state": described.state,
        "assignor": described.assignor,
        "generation_id": described.generation_id,
        "members": members,
        "offsets": [
            {column: getattr(o, column) for column in LAG_COLUMNS} for o in described.offsets
        ],
        "total_lag": described.total_lag,
    }


def _description_view(doc: dict[str, Any]) -> Group:
    summary = Text(
        f"group {doc['group']}: {doc['state']}, assignor {doc['assignor'] or '-'}, "
        f"generation {doc['generation_id']}, {len(doc['members'])} members, "
        f"total lag {doc['total_lag']}"
    )
    parts: list[Any] = [summary]
    if doc["members"]:
        columns = ["member_id", "client_id", "client_host", "assignment"]
        parts.append(simple_table(doc["members"], columns, title="members"))
    if doc["offsets"]:
        parts.append(simple_table(doc["offsets"], LAG_COLUMNS, title="offsets"))
    return Group(*parts)


@app.command("list")
def list_groups(ctx: typer.Context, output: OutputOption = None) -> None:
    """List consumer groups."""
    current = session(ctx)
    with current.admin() as admin:
        groups = admin.list_groups()
    document = {
        "groups": [{"group": g.group, "state": g.state, "members": g.members} for g in groups]
    }
    emit(
        document,
        current.output_for(output),
        lambda doc: simple_table(doc["groups"], ["group", "state", "members"]),
    )


@app.command("describe")
def describe(ctx: typer.Context, group: str, output: OutputOption = None) -> None:
    """Show a group's members, assignments and per-partition lag."""
    current = session(ctx)
    with current.admin() as admin:
        described = admin.describe_group(group)
    if described.state == "Dead" and not described.members and not described.offsets:
        fail(f"unknown group '{group}' (no members and no committed offsets)")
    emit(description_document(described), current.output_for(output), _description_view)


@app.command("reset-offsets")
def reset_offsets(
    ctx: typer.Context,
    group: str,
    topic: Annotated[str, typer.Option("--topic", "-t", help="the topic whose offsets move")],
    to: Annotated[ResetTo, typer.Option("--to", help="where the offsets go")],
    value: Annotated[
        str | None,
        typer.Option(
            "--value",
            help="the offset (--to offset), or a time (--to timestamp) as epoch ms or ISO-8601; "
            "a time without a zone is UTC",
        ),
    ] = None,
    partition: Annotated[
        list[int] | None,
        typer.Option("--partition", "-p", min=0, help="only this partition, repeatable"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show the new offsets without committing them")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Move an inactive group's committed offsets for one topic."""
    current = session(ctx)
    position = _reset_value(to, value)
    with current.admin() as admin:
        offsets = admin.reset_offsets(
            group, topic, to.value, position, partitions=partition or None, dry_run=dry_run
        )
    document = {
        "group": group,
        "dry_run": dry_run,
        "offsets": [
            {"topic": tp.topic, "partition": tp.partition, "offset": offset}
            for tp, offset in sorted(offsets.items())
        ],
    }

    def view(doc: dict[str, Any]) -> Group:
        verdict = "dry run: nothing committed" if dry_run else "committed"
        table = simple_table(doc["offsets"], ["topic", "partition", "offset"])
        return Group(table, Text(f"{verdict} ({len(doc['offsets'])} partitions)"))

    emit(document, current.output_for(output), view)


def _reset_value(to: ResetTo, value: str | None) -> int:
    if to in (ResetTo.EARLIEST, ResetTo.LATEST):
        if value is not None:
            raise typer.BadParameter(f"--to {to.value} takes no value", param_hint="--value")
        return 0
    if value is None:
        raise typer.BadParameter(f"--to {to.value} needs --value", param_hint="--value")
    if to is ResetTo.TIMESTAMP:
        return parse_timestamp(value)
    if not value.isdigit():
        raise typer.BadParameter(
            f"{value!r} is not an offset (an integer >= 0)", param_hint="--value"
        )
    return int(value)


@app.command("delete")
def delete(ctx: typer.Context, group: str) -> None:
    """Delete an empty group and its committed offsets."""
    current = session(ctx)
    with current.admin() as admin:
        admin.delete_group(group)
    say(f"deleted group '{group}'")
