"""Tab completion: SQL keywords, topic/stream/table names, and the columns of the sources the
statement being typed names, plus backslash command names at the start of a line."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Iterable, Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from streamhouse.workbench.streamctl.shell.catalog import Catalog

KEYWORDS = (
    "ALL", "AND", "AS", "ASC", "AVG", "BETWEEN", "BY", "CASE", "CAST", "CHANGES", "COUNT",
    "CREATE", "CROSS", "DESC", "DESCRIBE", "DISTINCT", "DROP", "ELSE", "EMIT", "END", "EXCEPT",
    "EXISTS", "EXPLAIN", "EXTENDED", "FALSE", "FROM", "FULL", "GROUP", "HAVING", "HOPPING", "IF",
    "ILIKE", "IN", "INNER", "INTERSECT", "INTERVAL", "IS", "JOIN", "LEFT", "LIKE", "LIMIT", "MAX",
    "MIN", "NOT", "NULL", "OF", "ON", "OR", "ORDER", "OUTER", "OVER", "QUALIFY", "QUERIES",
    "RIGHT", "SELECT", "SESSION", "SHOW", "STREAM", "STREAMS", "SUM", "TABLE", "TABLES", "THEN",
    "TIMESTAMP", "TOPICS", "TRUE", "TUMBLING", "UNION", "USING", "WHEN", "WHERE", "WINDOW",
    "WITH",
)  # fmt: skip

# Names that must be double-quoted to be read as identifiers.
_NEEDS_QUOTES = frozenset({"offset", "timestamp"})
_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_WORD_BEFORE_CURSOR = re.compile(r'("[^"\s]*|[A-Za-z_][A-Za-z0-9_]*)\Z')
_BEFORE_A_NAME = re.compile(r"\b(FROM|JOIN|DESCRIBE|EXTENDED|STREAM|TABLE|EXISTS)\s+\Z", re.I)
_IDENTIFIERS = re.compile(r'"([^"]+)"|([A-Za-z_][A-Za-z0-9_]*)')


def quoted(name: str) -> str:
    if _PLAIN_IDENTIFIER.match(name) and name.lower() not in _NEEDS_QUOTES:
        return name
    return '"' + name.replace('"', '""') + '"'


def _expects_name(text_before_word: str) -> bool:
    """After FROM, JOIN, DESCRIBE, ... only a topic, stream or table name fits."""
    return _BEFORE_A_NAME.search(text_before_word) is not None


class SqlCompleter(Completer):
    def __init__(self, catalog: Catalog, commands: Iterable[str]) -> None:
        self.catalog = catalog
        self.commands = sorted(commands)

    async def get_completions_async(
        self, document: Document, complete_event: CompleteEvent
    ) -> AsyncGenerator[Completion, None]:
        """Learns the columns of the named sources first (one DESCRIBE each, then cached)."""
        for name in self.referenced(document.text):
            await self.catalog.columns_of(name)
        for completion in self.get_completions(document, complete_event):
            yield completion

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        before = document.text_before_cursor
        if before.lstrip().startswith("\\"):
            yield from self._command_completions(before.lstrip())
            return
        found = _WORD_BEFORE_CURSOR.search(before)
        word = found.group(1) if found else ""
        if word.startswith('"') and before.count('"') % 2 == 0:
            return  # right after a closing quote: the name is complete
        prefix = word.lstrip('"').lower()
        offered: set[str] = set()
        ahead = before[: len(before) - len(word)]
        candidates = (
            self._columns(document.text)  # after `alias.` only a column fits
            if ahead.endswith(".")
            else self._candidates(document.text, _expects_name(ahead))
        )
        for text, meta in candidates:
            if text.lower().startswith(prefix) and text not in offered:
                offered.add(text)
                yield Completion(self._inserted(text, meta, word), -len(word), text, meta)

    def _candidates(self, statement: str, names_only: bool) -> Iterator[tuple[str, str]]:
        names = sorted(self.catalog.kinds().items())
        if names_only:
            yield from names
            return
        yield from self._columns(statement)
        yield from names
        for keyword in KEYWORDS:
            yield keyword, "keyword"

    def _columns(self, statement: str) -> Iterator[tuple[str, str]]:
        for name in self.referenced(statement):
            for column in self.catalog.cached_columns(name):
                yield column, f"column of {name}"

    @staticmethod
    def _inserted(text: str, meta: str, word: str) -> str:
        if meta == "keyword":
            return text.lower() if word and word.islower() else text
        return quoted(text)

    def referenced(self, statement: str) -> list[str]:
        """The catalog names the statement mentions, in order of first mention."""
        names: list[str] = []
        for found in _IDENTIFIERS.finditer(statement):
            name = self.catalog.resolve(found.group(1) or found.group(2))
            if name is not None and name not in names:
                names.append(name)
        return names

    def _command_completions(self, typed: str) -> Iterator[Completion]:
        if " " in typed:
            command, _, argument = typed.partition(" ")
            if command in ("\\d", "\\describe"):
                prefix = argument.strip().lower()
                for name, kind in sorted(self.catalog.kinds().items()):
                    if name.lower().startswith(prefix):
                        yield Completion(name, -len(argument.lstrip()), name, kind)
            return
        for command in self.commands:
            if command.startswith(typed):
                yield Completion(command, -len(typed))
