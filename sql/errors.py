"""One error type for everything wrong with a user's SQL, carrying a 1-based position.

The HTTP API answers a parse error with a message, line and column, and the shell points at
the offending token, so every failure in `streamhouse.sql` -- syntax, unknown names, refused
statements -- is a `SqlError`; callers never need to know sqlglot's exception types.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sqlglot.errors import ParseError, TokenError


class SqlError(ValueError):
    """A user-facing SQL error; `line`/`column` are 1-based, or None when not tied to a token."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"{message}{where}")


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' Did you mean ...?' suffix naming the closest candidates, or '' when none is close."""
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(by_lower[c]) for c in close) + "?"


def _line_column(sql: str, offset: int) -> tuple[int, int]:
    offset = max(0, min(offset, len(sql)))
    line = sql.count("\n", 0, offset) + 1
    column = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    return line, column


def from_sqlglot(error: ParseError | TokenError, sql: str) -> SqlError:
    """Translate a sqlglot error into a SqlError pointing at the start of the offending token.

    sqlglot reports the column of a token's last character; the highlighted text is the token,
    so its first character is `col - len(highlight) + 1`.
    """
    if isinstance(error, ParseError) and error.errors:
        first = error.errors[0]
        message = first.get("description") or "Invalid SQL"
        if "TokenType.SENTINEL" in message:
            # sqlglot names its end-of-input token; say it in words.
            message = message.split(" but got ")[0] + " but the statement ended"
        line, col = first.get("line"), first.get("col")
        highlight = first.get("highlight") or ""
        if line is None or col is None:
            return SqlError(message)
        if highlight and "\n" not in highlight:
            col = max(1, col - len(highlight) + 1)
        if highlight:
            message = f"{message} near {highlight!r}"
        return SqlError(message, line, col)
    end = getattr(error, "end", None)
    if isinstance(error, TokenError) and end is not None:
        line, column = _line_column(sql, end)
        return SqlError("Could not read the SQL text (unterminated string or quote?)", line, column)
    return SqlError(str(error).splitlines()[0] if str(error) else "Invalid SQL")
