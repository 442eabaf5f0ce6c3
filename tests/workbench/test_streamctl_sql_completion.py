"""Tab completion and error carets of the SQL shell, without a terminal.

The catalog is filled the way a refresh fills it; the pty tests in test_streamctl_shell.py
drive the same completer against a real server.
"""

from __future__ import annotations

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from streamhouse.workbench.streamctl.shell.catalog import Catalog
from streamhouse.workbench.streamctl.shell.client import SqlClient, SqlFailed
from streamhouse.workbench.streamctl.shell.commands import COMMANDS
from streamhouse.workbench.streamctl.shell.completion import SqlCompleter
from streamhouse.workbench.streamctl.shell.render import error_report


def completer() -> SqlCompleter:
    catalog = Catalog(SqlClient("http://127.0.0.1:9", timeout=1))
    catalog.topics = ["orders", "order-events"]
    catalog.tables = ["totals"]
    return SqlCompleter(catalog, COMMANDS)


def offered(text: str) -> list[str]:
    """What Tab offers with the cursor at `|` (or at the end)."""
    cursor = text.find("|") if "|" in text else len(text)
    document = Document(text.replace("|", ""), cursor)
    completions = completer().get_completions(document, CompleteEvent(True))
    return [c.text for c in completions]


def test_after_from_only_names_are_offered_quoted_when_needed() -> None:
    assert offered("SELECT * FROM ord") == ['"order-events"', "orders"]
    assert offered("select * from t") == ["totals"]


def test_columns_of_a_named_topic_come_first_and_keywords_keep_the_typed_case() -> None:
    assert offered("SELECT * FROM orders WHERE val") == ["value", "value_bytes"]
    assert offered("SELECT o.off| FROM orders o") == ['"offset"']
    assert offered("sel") == ["select"]
    assert offered("SEL") == ["SELECT"]
    assert offered("SELECT k| FROM orders") == ["key", "key_bytes"]


def test_backslash_commands_and_their_names() -> None:
    assert offered("\\ti") == ["\\timing"]
    assert offered("\\d to") == ["totals"]
    assert offered("\\nothing") == []


def test_an_unknown_name_offers_no_columns() -> None:
    assert offered('SELECT zz| FROM "no such"') == []
    assert offered('SELECT * FROM "no such"') == []
    assert offered('SELECT * FROM "ord') == ['"order-events"', "orders"]


def test_the_caret_points_at_the_column_on_its_line() -> None:
    report = error_report(SqlFailed("bad token", 2, 7), "SELECT 1\nFROM  ((\nLIMIT 1")
    assert report.splitlines() == [
        "error: bad token (line 2, column 7)",
        "  FROM  ((",
        "        ^",
    ]
    tabbed = error_report(SqlFailed("bad", 1, 3), "\tx y")
    assert tabbed.splitlines()[-1] == "  \t ^"


def test_a_position_outside_the_statement_prints_no_caret() -> None:
    assert error_report(SqlFailed("bad", 9, 1), "SELECT 1") == "error: bad (line 9, column 1)\n"
    assert error_report(SqlFailed("no position")) == "error: no position\n"
