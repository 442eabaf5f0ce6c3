"""What every command shares: the server address, the output form, and how failures end.

Exit codes are part of the interface scripts rely on: 0 ok, 1 the operation failed, 2 usage
(bad flags or values, reported by typer before anything is sent), 3 the server is unreachable.
Failures print one line, ``error: ...``, on stderr; tracebacks are for bugs only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer
from streamhouse.workbench.streamctl.output import Output

if TYPE_CHECKING:
    from streamhouse.broker.client import AdminClient

DEFAULT_SERVER = "127.0.0.1:50051"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


@dataclass(frozen=True)
class Session:
    server: str
    output: Output

    def output_for(self, override: Output | None) -> Output:
        """A command's own ``--output`` wins over the global one."""
        return override or self.output

    def admin(self) -> AdminClient:
        """An admin client (imported here: the client's imports would slow down ``--help``)."""
        from streamhouse.broker.client import AdminClient

        return AdminClient(self.server)


def session(ctx: typer.Context) -> Session:
    found = ctx.find_object(Session)
    assert found is not None, "the streamctl callback sets the session"
    return found


class OperationFailed(Exception):
    """A failure streamctl itself detects (e.g. records not acknowledged): exit code 1."""


def fail(message: str) -> None:
    raise OperationFailed(message)


def say(message: str) -> None:
    """The one-line outcome of a command that has no document to show."""
    sys.stdout.write(message + "\n")


def run(app: Callable[[], object]) -> None:
    """Runs the typer app and turns the expected failures into an error line and exit code."""
    try:
        app()
    except OperationFailed as exc:
        _report(exc)
        sys.exit(EXIT_FAILED)
    except ValueError as exc:
        # The client checks argument values (counts, offsets) the flags did not constrain.
        _report(exc)
        sys.exit(EXIT_USAGE)
    except BrokenPipeError:
        # `streamctl consume ... | head`: the reader is gone, which is not a failure.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit-time flush does not fail again
        sys.exit(EXIT_OK)
    except Exception as exc:
        from streamhouse.broker.client import StreamHouseError, UnavailableError

        if not isinstance(exc, StreamHouseError):
            raise  # a bug: the traceback is what helps
        _report(exc)
        sys.exit(EXIT_UNREACHABLE if isinstance(exc, UnavailableError) else EXIT_FAILED)


def _report(exc: BaseException) -> None:
    message = " ".join(str(exc).split()) or type(exc).__name__
    sys.stderr.write(f"error: {message}\n")
