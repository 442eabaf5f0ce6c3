"""The interactive prompt: `streamhouse> `, multi-line statements, history and completion.

Enter runs the input once it ends with `;` outside quotes and comments (or is a backslash
command); otherwise it starts a continuation line (`          -> `). Whole statements, not
lines, go to the history file, so Up recalls a multi-line statement in one piece.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app
from prompt_toolkit.filters import Condition
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from streamhouse.workbench.streamctl.session import EXIT_OK, EXIT_UNREACHABLE
from streamhouse.workbench.streamctl.shell.client import ServerUnreachable
from streamhouse.workbench.streamctl.shell.commands import COMMANDS, Quit
from streamhouse.workbench.streamctl.shell.completion import SqlCompleter
from streamhouse.workbench.streamctl.shell.runner import QueryCancelled, Shell
from streamhouse.workbench.streamctl.shell.splitting import split_statements

PROMPT = "streamhouse> "
CONTINUATION = "          -> "


def history_path() -> Path:
    configured = os.environ.get("STREAMHOUSE_HISTORY")
    return Path(configured) if configured else Path.home() / ".streamhouse_history"


def open_history(path: Path) -> History:
    """The history file, or a history kept in memory (with a warning) if it is not writable."""
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        sys.stderr.write(f"warning: history is not saved ({path}: {exc.strerror})\n")
        return InMemoryHistory()
    return FileHistory(str(path))


def _still_typing() -> bool:
    """Enter adds a line unless the input is complete SQL, a backslash command, or empty."""
    text = get_app().current_buffer.text
    stripped = text.strip()
    if not stripped or stripped.startswith("\\"):
        return False
    return not split_statements(text).complete


async def interactive(shell: Shell) -> int:
    """Runs the prompt until `\\q` or Ctrl-D; exit 3 if the server is unreachable at start."""
    try:
        await shell.refresh_catalog()
    except ServerUnreachable as exc:
        sys.stderr.write(f"error: {exc}\n")
        await shell.client.aclose()
        return EXIT_UNREACHABLE
    sys.stdout.write(f"connected to {shell.client.base_url}; \\? for help, \\q to quit\n")
    session: PromptSession[str] = PromptSession(
        PROMPT,
        prompt_continuation=CONTINUATION,
        multiline=Condition(_still_typing),
        history=open_history(history_path()),
        completer=SqlCompleter(shell.catalog, COMMANDS),
        complete_while_typing=False,
    )
    try:
        with shell.interruptible():
            await _loop(shell, session)
    finally:
        await shell.client.aclose()
    return EXIT_OK


async def _loop(shell: Shell, session: PromptSession[str]) -> None:
    while True:
        try:
            text = await session.prompt_async()
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt clears the input
        except EOFError:
            return  # Ctrl-D
        try:
            await shell.run_input(text)
        except Quit:
            return
        except QueryCancelled:
            sys.stderr.write("query cancelled\n")
        except ServerUnreachable as exc:
            sys.stderr.write(f"error: {exc}\n")
