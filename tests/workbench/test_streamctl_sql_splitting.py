"""Where the shell and piped scripts end a statement: `;` outside quotes and comments only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamhouse.workbench.streamctl.shell.splitting import split_statements


@pytest.mark.parametrize(
    ("text", "statements", "rest"),
    [
        ("SELECT 1;", ["SELECT 1"], ""),
        ("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"], ""),
        ("SELECT key\nFROM t\nWHERE x = 1;\n", ["SELECT key\nFROM t\nWHERE x = 1"], ""),
        ("SELECT 'a;b' AS x;", ["SELECT 'a;b' AS x"], ""),
        ("SELECT 'it''s; fine';", ["SELECT 'it''s; fine'"], ""),
        ("SELECT E'\\'; still a string';", ["SELECT E'\\'; still a string'"], ""),
        ('SELECT "odd;name" FROM t;', ['SELECT "odd;name" FROM t'], ""),
        ("SELECT `a;b`;", ["SELECT `a;b`"], ""),
        ("SELECT 1 -- not here; \n;", ["SELECT 1 -- not here;"], ""),
        ("SELECT /* a; /* nested; */ b; */ 1;", ["SELECT /* a; /* nested; */ b; */ 1"], ""),
        ("SELECT $$a;b$$, $tag$c;$$;d$tag$;", ["SELECT $$a;b$$, $tag$c;$$;d$tag$"], ""),
        ("SELECT 1; SELECT 2", ["SELECT 1"], "SELECT 2"),
        ("SELECT 1;  -- trailing comment", ["SELECT 1"], ""),
        ("-- only a comment;\n/* and; this */;", [], ""),
        (";", [], ""),
        (";;; ;\n;", [], ""),
        ("", [], ""),
        ("SELECT price$1 FROM t;", ["SELECT price$1 FROM t"], ""),
        ("SELECT x'41' FROM t;", ["SELECT x'41' FROM t"], ""),
    ],
)
def test_statements_end_at_semicolons_outside_quotes_and_comments(
    text: str, statements: list[str], rest: str
) -> None:
    split = split_statements(text)
    assert (split.statements, split.rest) == (statements, rest)
    assert split.complete is (rest == "")


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 'unterminated;",
        'SELECT "unterminated; identifier',
        "SELECT /* open comment;",
        "SELECT /* a /* b */ still open;",
        "SELECT $$ open dollar string;",
        "SELECT E'escaped quote \\';",
    ],
)
def test_open_quotes_and_comments_keep_the_statement_open(text: str) -> None:
    split = split_statements(text)
    assert split.statements == []
    assert split.open_quote and not split.complete


def test_a_statement_after_an_unterminated_string_is_part_of_it() -> None:
    split = split_statements("SELECT 1; SELECT 'oops; SELECT 2;")
    assert split.statements == ["SELECT 1"]
    assert split.rest == "SELECT 'oops; SELECT 2;" and not split.complete


@given(st.text(alphabet=st.sampled_from(list("ab ;'\"`$-/*\\\nE"))))
def test_any_text_splits_into_pieces_of_itself(text: str) -> None:
    split = split_statements(text)
    for statement in [*split.statements, split.rest]:
        assert statement in text
        assert statement == statement.strip()
