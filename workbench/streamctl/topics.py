"""`streamctl topic ...`: create, list, describe, update, delete, add-partitions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.table import Table
from streamhouse.workbench.streamctl.args import parse_pairs
from streamhouse.workbench.streamctl.output import Output, emit, simple_table
from streamhouse.workbench.streamctl.session import fail, say, session

if TYPE_CHECKING:
    from streamhouse.broker.client import TopicDescription, TopicInfo

app = typer.Typer(help="Create, inspect, change and delete topics.", no_args_is_help=True)

OutputOption = Annotated[
    Output | None, typer.Option("--output", "-o", help="table or json (default: the global one)")
]
TOPIC_COLUMNS = ["name", "partitions", "internal", "created"]
PARTITION_COLUMNS = [
    "partition",
    "log_start_offset",
    "next_offset",
    "committed_offset",
    "size_bytes",
    "segment_count",
    "leader_agent",
    "leader_address",
    "leader_epoch",
]


def topic_document(topic: TopicInfo) -> dict[str, Any]:
    return {
        "name": topic.name,
        "topic_id": topic.topic_id,
        "partitions": topic.partitions,
        "configs": dict(topic.configs),
        "created_at_ms": topic.created_at_ms,
        "internal": topic.internal,
    }


def description_document(described: TopicDescription) -> dict[str, Any]:
    return {
        "topic": topic_document(described.topic),
        "partitions": [
            {column: getattr(p, column) for column in PARTITION_COLUMNS}
            for p in described.partitions
        ],
    }


def _created(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ms else ""


def _topic_rows(topics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**t, "created": _created(t["created_at_ms"])} for t in topics]


def _topic_line(verb: str) -> Any:
    def line(doc: dict[str, Any]) -> str:
        count = doc["partitions"]
        return f"{verb} topic '{doc['name']}' ({count} partition{'' if count == 1 else 's'})"

    return line


def _description_view(doc: dict[str, Any]) -> Group:
    topic = doc["topic"]
    configs = Table("config", "value", title=f"topic {topic['name']}", title_justify="left")
    for key, value in sorted(topic["configs"].items()):
        configs.add_row(key, value)
    partitions = simple_table(doc["partitions"], PARTITION_COLUMNS)
    return Group(configs, partitions)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="topic name")],
    partitions: Annotated[int, typer.Option("--partitions", "-p", min=1)] = 1,
    config: Annotated[
        list[str] | None, typer.Option("--config", "-c", help="KEY=VALUE, repeatable")
    ] = None,
    if_not_exists: Annotated[
        bool, typer.Option("--if-not-exists", help="succeed if the topic exists")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Create a topic."""
    current = session(ctx)
    configs = parse_pairs(config or [], "--config")
    with current.admin() as admin:
        topic = admin.create_topic(name, partitions, configs, if_not_exists=if_not_exists)
    emit(topic_document(topic), current.output_for(output), _topic_line("created"))


@app.command("list")
def list_topics(
    ctx: typer.Context,
    internal: Annotated[bool, typer.Option("--internal", help="include __ topics")] = False,
    output: OutputOption = None,
) -> None:
    """List topics."""
    current = session(ctx)
    with current.admin() as admin:
        topics = admin.list_topics(include_internal=internal)
    document = {"topics": [topic_document(t) for t in topics]}
    emit(
        document,
        current.output_for(output),
        lambda doc: simple_table(_topic_rows(doc["topics"]), TOPIC_COLUMNS),
    )


@app.command("describe")
def describe(ctx: typer.Context, name: str, output: OutputOption = None) -> None:
    """Show a topic's configs and partitions (offsets, sizes, leaders)."""
    current = session(ctx)
    with current.admin() as admin:
        described = admin.describe_topic(name)
    emit(description_document(described), current.output_for(output), _description_view)


@app.command("update")
def update(
    ctx: typer.Context,
    name: str,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="KEY=VALUE to set, repeatable")
    ] = None,
    reset: Annotated[
        list[str] | None, typer.Option("--reset", help="KEY back to its default, repeatable")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Change a topic's configs."""
    current = session(ctx)
    if not set_ and not reset:
        raise typer.BadParameter("give at least one --set KEY=VALUE or --reset KEY")
    changes = parse_pairs(set_ or [], "--set")
    with current.admin() as admin:
        topic = admin.update_topic_config(name, set=changes, reset=reset or [])
    emit(topic_document(topic), current.output_for(output), _topic_line("updated"))


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Delete a topic and all its records."""
    current = session(ctx)
    if not yes and not _confirmed(f"Delete topic '{name}' and all its records?"):
        fail(f"topic '{name}' was not deleted")
    with current.admin() as admin:
        admin.delete_topic(name)
    say(f"deleted topic '{name}'")


def _confirmed(question: str) -> bool:
    """A yes from the terminal; no answer (no terminal, end of input) is a no."""
    try:
        return typer.confirm(question, default=False, err=True)
    except typer.Abort:
        return False


@app.command("add-partitions")
def add_partitions(
    ctx: typer.Context,
    name: str,
    total: Annotated[int, typer.Option("--total", min=1, help="the new partition count")],
    output: OutputOption = None,
) -> None:
    """Grow a topic to more partitions (keyed records then map to new partitions)."""
    current = session(ctx)
    with current.admin() as admin:
        topic = admin.add_partitions(name, total)
    emit(topic_document(topic), current.output_for(output), _topic_line("grew"))
