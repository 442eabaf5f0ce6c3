"""A SQL session: runs statements and backslash commands, prints answers, cancels on Ctrl-C.

Both the interactive prompt and the piped-script mode drive a `Shell`. A statement runs as
an asyncio task; SIGINT (Ctrl-C while the terminal is not in the prompt's raw mode) cancels
that task, which closes its HTTP connection so the server aborts the query, and the shell
carries on. With no query running, SIGINT is ignored here: at the prompt, Ctrl-C is a key
the prompt handles itself (it clears the input).
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from streamhouse.workbench.streamctl.shell.catalog import Catalog
from streamhouse.workbench.streamctl.shell.client import SqlClient, SqlFailed
from streamhouse.workbench.streamctl.shell.commands import run_command
from streamhouse.workbench.streamctl.shell.render import Format, error_report, print_result
from streamhouse.workbench.streamctl.shell.splitting import split_statements

# Statements after which the names used for completion may have changed.
_CHANGES_CATALOG = re.compile(r"\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(create|drop)\b", re.I | re.S)


class QueryCancelled(Exception):
    """Ctrl-C stopped the statement."""


@dataclass
class Settings:
    format: Format = Format.TABLE
    timing: bool = True


class Shell:
    def __init__(self, client: SqlClient, settings: Settings, completing: bool = False) -> None:
        self.client = client
        self.settings = settings
        self.catalog = Catalog(client)
        self.completing = completing  # keep the catalog fresh for tab completion
        self._running: asyncio.Task[Any] | None = None

    async def refresh_catalog(self) -> None:
        await self.catalog.refresh()

    async def execute(self, statement: str) -> bool:
        """Runs one statement and prints its answer or its error; True when it succeeded.

        Raises QueryCancelled on Ctrl-C and ServerUnreachable when there is no answer.
        """
        try:
            document = await self._cancellable(self.client.run(statement))
        except SqlFailed as failure:
            sys.stderr.write(error_report(failure, statement))
            sys.stderr.flush()
            return False
        print_result(document, self.settings.format, self.settings.timing)
        if self.completing and _CHANGES_CATALOG.match(statement):
            await self.refresh_catalog()
        return True

    async def run_input(self, text: str) -> None:
        """Runs what was typed at the prompt: one backslash command, or the statements in it.

        A failed statement does not stop the next one on the line (as in psql); Ctrl-C does.
        """
        if text.lstrip().startswith("\\"):
            await run_command(self, text)
            return
        split = split_statements(text)
        statements = split.statements + ([split.rest] if split.rest else [])
        for statement in statements:
            await self.execute(statement)

    async def _cancellable(self, work: Coroutine[Any, Any, Any]) -> Any:
        task = asyncio.ensure_future(work)
        self._running = task
        try:
            await asyncio.wait([task])
        finally:
            self._running = None
        if task.cancelled():
            raise QueryCancelled
        return task.result()

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """While active, SIGINT cancels the running statement instead of raising anywhere."""
        loop = asyncio.get_running_loop()

        def on_interrupt(signum: int, frame: object) -> None:
            running = self._running
            if running is not None:
                loop.call_soon_threadsafe(running.cancel)

        previous = signal.signal(signal.SIGINT, on_interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
