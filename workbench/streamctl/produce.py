"""`streamctl produce`: one record per line of stdin or a file, sent in bulk."""

from __future__ import annotations

import asyncio
import enum
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from streamhouse.workbench.streamctl.args import parse_pairs
from streamhouse.workbench.streamctl.session import fail, say, session


class AcksChoice(enum.StrEnum):
    LEADER = "leader"
    ALL = "all"
    NONE = "none"


class CompressionChoice(enum.StrEnum):
    NONE = "none"
    GZIP = "gzip"
    SNAPPY = "snappy"
    LZ4 = "lz4"
    ZSTD = "zstd"


def produce(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="the topic to write to")],
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", exists=True, dir_okay=False, help="read this file instead of stdin"
        ),
    ] = None,
    key_sep: Annotated[
        str | None,
        typer.Option(
            "--key-sep",
            help="split each line at the first SEP into key and value "
            "(a line without it has a null key)",
        ),
    ] = None,
    acks: Annotated[AcksChoice, typer.Option("--acks")] = AcksChoice.LEADER,
    partition: Annotated[
        int | None, typer.Option("--partition", "-p", min=0, help="send every record here")
    ] = None,
    header: Annotated[
        list[str] | None, typer.Option("--header", help="KEY=VALUE on every record, repeatable")
    ] = None,
    compression: Annotated[
        CompressionChoice, typer.Option("--compression")
    ] = CompressionChoice.NONE,
) -> None:
    """Send one record per line of stdin or --file (only the newline is stripped)."""
    current = session(ctx)
    if key_sep == "":
        raise typer.BadParameter("the key separator must not be empty", param_hint="--key-sep")
    headers = [(k, v.encode()) for k, v in parse_pairs(header or [], "--header").items()]

    from streamhouse.broker.client import UnavailableError
    from streamhouse.workbench.streamctl.sending import SendOptions, send_lines

    options = SendOptions(
        current.server, topic, acks.value, compression.value, key_sep, partition, headers
    )
    with ExitStack() as stack:
        source = stack.enter_context(file.open("rb")) if file else sys.stdin.buffer
        outcome = asyncio.run(send_lines(source, options))
    say(f"acknowledged {outcome.acknowledged} records")
    if outcome.failed:
        total = outcome.acknowledged + outcome.failed
        message = f"{outcome.failed} of {total} records were not acknowledged: {outcome.error}"
        if isinstance(outcome.error, UnavailableError):
            raise UnavailableError(message, code=outcome.error.code)  # exit code 3
        fail(message)
