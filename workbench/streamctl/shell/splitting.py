"""Where one SQL statement ends: at a `;` that is outside quotes, comments and `$$` strings.

The shell needs this for text that is still being typed (an unterminated string means "keep
reading", not an error), so it scans characters instead of parsing: sqlglot's tokenizer and
`streamhouse.sql.parse_script` reject incomplete input. The server parses each statement
for real and reports errors with positions relative to the text sent, which is why each
statement is returned as the exact (stripped) text the user typed.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


class _State(enum.Enum):
    CODE = "code"
    QUOTED = "quoted"
    LINE_COMMENT = "line comment"
    BLOCK_COMMENT = "block comment"
    DOLLAR_QUOTED = "dollar quoted"


@dataclass(frozen=True)
class Split:
    """Complete statements (without their `;`) and what follows the last `;`.

    `rest` is an unfinished statement ("" when only blanks or comments follow); `open_quote`
    says the text ends inside a string, quoted identifier or block comment.
    """

    statements: list[str]
    rest: str
    open_quote: bool

    @property
    def complete(self) -> bool:
        """Nothing is left half-typed: the input may be run now."""
        return not self.rest and not self.open_quote


def split_statements(text: str) -> Split:
    """Splits `text` at top-level `;`; statements that hold only comments are dropped."""
    statements: list[str] = []
    state = _State.CODE
    start = 0
    has_code = False
    closing = ""  # the quote character or `$tag$` that ends the current quoted text
    backslash_escapes = False
    depth = 0  # block comments nest, as in DuckDB and PostgreSQL
    i = 0
    while i < len(text):
        ch = text[i]
        if state is _State.CODE:
            if ch == ";":
                if has_code:
                    statements.append(text[start:i].strip())
                start, has_code = i + 1, False
            elif text.startswith("--", i):
                state = _State.LINE_COMMENT
                i += 2
                continue
            elif text.startswith("/*", i):
                state, depth = _State.BLOCK_COMMENT, 1
                i += 2
                continue
            elif ch in "'\"`":
                state, closing, has_code = _State.QUOTED, ch, True
                backslash_escapes = ch == "'" and _is_escape_prefix(text, i)
            elif ch == "$" and (tag := _dollar_tag(text, i)):
                state, closing, has_code = _State.DOLLAR_QUOTED, tag, True
                i += len(tag)
                continue
            elif not ch.isspace():
                has_code = True
        elif state is _State.QUOTED:
            if backslash_escapes and ch == "\\":
                i += 2
                continue
            if ch == closing:
                if text.startswith(closing * 2, i):  # a doubled quote stands for itself
                    i += 2
                    continue
                state = _State.CODE
        elif state is _State.LINE_COMMENT:
            if ch == "\n":
                state = _State.CODE
        elif state is _State.BLOCK_COMMENT:
            if text.startswith("/*", i):
                depth += 1
                i += 2
                continue
            if text.startswith("*/", i):
                depth -= 1
                i += 2
                if depth == 0:
                    state = _State.CODE
                continue
        elif text.startswith(closing, i):  # dollar quoted
            state = _State.CODE
            i += len(closing)
            continue
        i += 1
    open_quote = state in (_State.QUOTED, _State.BLOCK_COMMENT, _State.DOLLAR_QUOTED)
    rest = text[start:].strip() if has_code else ""
    return Split(statements, rest, open_quote)


def _is_escape_prefix(text: str, quote_at: int) -> bool:
    """`E'...'` strings take backslash escapes; the E must start a word."""
    if quote_at == 0 or text[quote_at - 1] not in "eE":
        return False
    return quote_at == 1 or not (text[quote_at - 2].isalnum() or text[quote_at - 2] == "_")


def _dollar_tag(text: str, at: int) -> str:
    """`$$` or `$tag$` opening a dollar-quoted string, unless `$` continues an identifier."""
    if at > 0 and (text[at - 1].isalnum() or text[at - 1] == "_"):
        return ""
    found = _DOLLAR_TAG.match(text, at)
    return found.group(0) if found else ""
