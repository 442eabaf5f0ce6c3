"""Versioned schema migrations shipped as package data.

Each dialect has a folder of ``NNNN_description.sql`` files. A store applies, in version order,
those not yet listed in its ``schema_version`` table, each in its own transaction together
with the row recording it, so a crash mid-way leaves either all of a migration or none.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    """One schema change: its version number, file name and SQL text."""

    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """The migrations of ``dialect`` (``"sqlite"`` or ``"postgres"``), by ascending version.

    Raises:
        RuntimeError: The folder is missing or two files share a version: the package is
            broken, and guessing an order would corrupt the schema.
    """
    folder = resources.files("streamhouse.broker.metadata") / "migrations" / dialect
    if not folder.is_dir():
        raise RuntimeError(f"no migrations folder for dialect {dialect!r} in the package")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise RuntimeError(
                f"migrations {found[version].name} and {entry.name} share version {version}"
            )
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    if not found:
        raise RuntimeError(f"the migrations folder for {dialect!r} holds no NNNN_*.sql files")
    return [found[v] for v in sorted(found)]


def split_sqlite_statements(sql: str) -> list[str]:
    """Splits a script into complete statements (SQLite's own tokenizer decides the ends).

    ``executescript`` would commit the surrounding transaction, so migrations run statement by
    statement inside ``BEGIN IMMEDIATE`` instead.
    """
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if _has_code(statement):
                statements.append(statement)
            buffer = ""
    if _has_code(buffer):
        raise RuntimeError(f"migration ends with an incomplete statement: {buffer.strip()[:80]!r}")
    return statements


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())
