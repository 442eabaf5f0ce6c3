"""`streamctl sql < script.sql`: the `;`-separated statements of stdin, in order.

As psql and duckdb do, a script stops at its first failing statement: exit 1 after the
server's error, 3 when the server cannot be reached. Backslash commands are for the
interactive shell only.
"""

from __future__ import annotations

import sys

from streamhouse.workbench.streamctl.session import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE
from streamhouse.workbench.streamctl.shell.client import ServerUnreachable
from streamhouse.workbench.streamctl.shell.runner import Shell
from streamhouse.workbench.streamctl.shell.splitting import split_statements


async def run_script(shell: Shell, text: str) -> int:
    split = split_statements(text)
    # A last statement without ';' still runs: the server says what is wrong with it, if anything.
    statements = split.statements + ([split.rest] if split.rest else [])
    try:
        for statement in statements:
            if not await shell.execute(statement):
                return EXIT_FAILED
    except ServerUnreachable as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_UNREACHABLE
    finally:
        await shell.client.aclose()
    return EXIT_OK
