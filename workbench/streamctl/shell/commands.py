"""The shell's backslash commands (`\\d`, `\\timing`, `\\format`, `\\q`, ...), psql-style.

A command is one line starting with a backslash; it is never sent to the server as SQL.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from streamhouse.workbench.streamctl.shell.render import Format, print_result

if TYPE_CHECKING:
    from streamhouse.workbench.streamctl.shell.runner import Shell

HELP = """\
  \\d             list topics, streams and tables
  \\d NAME        describe a topic, stream or table (DESCRIBE NAME)
  \\timing        toggle showing how long each statement took (\\timing on|off)
  \\format FMT    show results as table, json or csv
  \\refresh       reload the names used for tab completion
  \\q             quit (Ctrl-D too)
  \\?             this help
SQL statements end with ';' and may span lines. Ctrl-C cancels a running query or clears
the input; Tab completes keywords, names and columns.
"""


class Quit(Exception):
    """`\\q`: leave the shell."""


async def _list_sources(shell: Shell, argument: str) -> None:
    if argument:
        await shell.execute(f"DESCRIBE {argument}")
        return
    await shell.refresh_catalog()
    rows = [[name, kind] for name, kind in sorted(shell.catalog.kinds().items())]
    document = {
        "columns": [{"name": "name", "type": "VARCHAR"}, {"name": "kind", "type": "VARCHAR"}],
        "rows": rows,
        "row_count": len(rows),
        "truncated": False,
        "elapsed_ms": 0.0,
    }
    print_result(document, shell.settings.format, timing=False)


async def _timing(shell: Shell, argument: str) -> None:
    choices = {"": not shell.settings.timing, "on": True, "off": False}
    if argument.lower() not in choices:
        raise ValueError(f"\\timing takes on or off, not {argument!r}")
    shell.settings.timing = choices[argument.lower()]
    sys.stdout.write(f"timing is {'on' if shell.settings.timing else 'off'}\n")


async def _format(shell: Shell, argument: str) -> None:
    try:
        shell.settings.format = Format(argument.lower())
    except ValueError:
        raise ValueError("\\format takes table, json or csv") from None
    sys.stdout.write(f"output format is {shell.settings.format}\n")


async def _refresh(shell: Shell, argument: str) -> None:
    await shell.refresh_catalog()
    kinds = shell.catalog.kinds()
    sys.stdout.write(f"{len(kinds)} names loaded\n")


async def _quit(shell: Shell, argument: str) -> None:
    raise Quit


async def _help(shell: Shell, argument: str) -> None:
    sys.stdout.write(HELP)


COMMANDS: dict[str, Callable[[Shell, str], Awaitable[None]]] = {
    "\\d": _list_sources,
    "\\timing": _timing,
    "\\format": _format,
    "\\refresh": _refresh,
    "\\q": _quit,
    "\\?": _help,
}


async def run_command(shell: Shell, line: str) -> None:
    """Runs one backslash command line; raises Quit for `\\q`. Mistakes print one line."""
    name, _, argument = line.strip().partition(" ")
    argument = argument.strip().rstrip(";").strip()
    command = COMMANDS.get(name.rstrip(";"))
    if command is None:
        sys.stderr.write(f"error: unknown command {name} (\\? lists the commands)\n")
        return
    try:
        await command(shell, argument)
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
