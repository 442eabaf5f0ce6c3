"""`streamctl sql` as a person uses it: the shell in a real terminal (pty), and piped scripts.

Each test drives the real command with pexpect against a real server. Output is compared
after removing the terminal's escape sequences, which the prompt uses to redraw itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pexpect
import pytest

from ..conftest import ServerProcess, free_port

STREAMCTL = [sys.executable, "-m", "streamhouse.workbench.streamctl"]
PROMPT = "streamhouse>"
ESCAPES = re.compile(r"\x1b\[[0-9;?<=>]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\r|\x08")
# Enough work that it is still running when Ctrl-C arrives (the server stops it at 30 s).
SLOW_QUERY = "SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range + b.range = 7;"
UP = "\x1b[A"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with a topic `greetings` holding alice/hello, bob/hi, carol/hey."""
    server = ServerProcess(tmp_path_factory.mktemp("shell") / "data").start()
    try:
        with httpx.Client(base_url=f"{server.http_url}/api/v1", timeout=30) as client:
            created = client.post("/topics", json={"name": "greetings", "partitions": 2})
            assert created.status_code == 201, created.text
            records = [
                {"key": k, "value": v}
                for k, v in (("alice", "hello"), ("bob", "hi"), ("carol", "hey"))
            ]
            produced = client.post("/topics/greetings/records", json={"records": records})
            assert produced.status_code == 200, produced.text
        yield server
    finally:
        server.kill()


class Terminal:
    """A `streamctl sql` shell in a pty; `expect` reads until text shows up in the output."""

    def __init__(self, http: str, history: Path, *args: str) -> None:
        env = {
            **os.environ,
            "STREAMHOUSE_HISTORY": str(history),
            "TERM": "xterm",
            "PROMPT_TOOLKIT_NO_CPR": "1",  # nobody answers cursor-position requests here
        }
        self.child = pexpect.spawn(
            STREAMCTL[0],
            [*STREAMCTL[1:], "sql", "--http", http, *args],
            env=env,
            dimensions=(50, 200),
            encoding="utf-8",
            timeout=30,
        )
        self.output = ""  # everything shown so far, escapes removed
        self.read_to = 0

    def expect(self, text: str, timeout: float = 30) -> str:
        """Waits for `text` after what earlier calls consumed; returns the output before it."""
        deadline = time.monotonic() + timeout
        while (found := self.output.find(text, self.read_to)) < 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not shown; the screen ends:\n{self.output[-2000:]}")
            try:
                self.output += ESCAPES.sub("", self.child.read_nonblocking(65536, timeout=0.5))
            except pexpect.TIMEOUT:
                continue
        before = self.output[self.read_to : found]
        self.read_to = found + len(text)
        return before

    def prompt(self) -> None:
        self.expect(PROMPT)

    def send_line(self, line: str) -> None:
        """Types a line and Enter, and reads past its echo (the end of the line, then a newline)."""
        self.child.send(line + "\r")
        self.expect(line.split("\r")[-1] + "\n")

    def run(self, line: str, until: str) -> str:
        """Types a line, returns the output up to `until`, and waits for the next prompt."""
        self.send_line(line)
        shown = self.expect(until)
        self.prompt()
        return shown

    def exit_code(self) -> int:
        self.child.expect(pexpect.EOF, timeout=30)
        self.child.close()
        return self.child.exitstatus

    def quit(self) -> int:
        self.child.send("\\q\r")
        return self.exit_code()


@pytest.fixture
def shell(server: ServerProcess, tmp_path: Path) -> Iterator[Terminal]:
    terminal = Terminal(server.http_url, tmp_path / "history", "--format", "csv")
    terminal.prompt()
    yield terminal
    if terminal.child.isalive():
        terminal.child.terminate(force=True)


def lines(shown: str) -> list[str]:
    return [line.strip() for line in shown.splitlines() if line.strip()]


def test_a_statement_spans_lines_until_its_semicolon(shell: Terminal) -> None:
    shell.child.send("SELECT key\r")
    shell.expect("->")
    shell.child.send("FROM greetings\r")
    shell.expect("->")
    shown = shell.run("ORDER BY key;", "carol")
    assert lines(shown)[-3:] == ["key", "alice", "bob"]
    assert shell.quit() == 0


def test_statements_on_one_line_run_in_order_and_a_quoted_semicolon_is_text(
    shell: Terminal,
) -> None:
    shell.send_line("SELECT 'a;b' AS first; SELECT 2 AS second;")
    first = shell.expect("second")
    assert lines(first)[-2:] == ["first", "a;b"]
    assert shell.expect(PROMPT).strip().splitlines()[0] == "2"


def test_backslash_d_lists_and_describes(shell: Terminal) -> None:
    listed = shell.run("\\d", "greetings,topic")
    assert "name,kind" in listed
    described = shell.run("\\d greetings", "\n1,")
    assert "partition,log_start_offset,next_offset" in described
    shell.send_line("\\d nowhere")
    assert "error: Unknown topic, stream or table 'nowhere'" in shell.expect(PROMPT)


def test_format_and_timing_change_how_results_show(shell: Terminal) -> None:
    shell.run("\\format json", "output format is json")
    as_json = shell.run("SELECT 1 AS n;", '"truncated": false')
    assert '"rows": [\n    [\n      1\n    ]\n  ]' in as_json
    shell.run("\\format table", "output format is table")
    shell.run("SELECT 1 AS n;", "1 row (")
    shell.run("\\timing", "timing is off")
    shell.send_line("SELECT 2 AS n;")
    untimed = shell.expect(PROMPT)
    assert "1 row\n" in untimed and " ms)" not in untimed
    shell.run("\\timing on", "timing is on")
    shell.run("\\format xml", "takes table, json or csv")
    shell.run("\\timing maybe", "takes on or off")


def test_history_is_saved_and_recalled_with_up_in_a_new_shell(
    server: ServerProcess, tmp_path: Path
) -> None:
    history = tmp_path / "history"
    first = Terminal(server.http_url, history, "--format", "csv")
    first.prompt()
    first.run("SELECT 41 + 1\r  AS answer;", "42")
    first.child.sendcontrol("d")
    assert first.exit_code() == 0
    assert "SELECT 41 + 1" in history.read_text()

    second = Terminal(server.http_url, history, "--format", "csv")
    second.prompt()
    second.child.send(UP)
    second.expect("AS answer;")
    shown = second.run("", "42")
    assert "answer" in shown
    assert second.quit() == 0


def test_tab_completes_a_topic_name_and_a_column(shell: Terminal) -> None:
    shell.child.send("SELECT key FROM gree\t")
    shell.expect("greetings")
    shell.child.send(" WHERE val\t")
    shell.expect("value_bytes")  # the menu offers value and value_bytes; "value" is typed
    assert lines(shell.run(" = 'hi';", "bob")) == ["key"]
    assert shell.quit() == 0


def test_completion_learns_a_created_stream_and_forgets_a_dropped_one(shell: Terminal) -> None:
    shell.run(
        "CREATE STREAM typed (id INT, amount DOUBLE) "
        "WITH (kafka_topic='greetings', value_format='JSON');",
        "created",
    )
    shell.child.send("SELECT * FROM typ\t")
    shell.expect("typed")
    shell.child.send(" WHERE amo\t")
    shell.expect("unt")  # "amo" became "amount" (the line is redrawn around the cursor)
    shell.child.sendintr()
    shell.prompt()
    shell.send_line("\\d")
    assert lines(shell.expect(PROMPT)) == ["name,kind", "greetings,topic", "typed,stream"]
    shell.run("DROP STREAM typed;", "dropped")
    shell.send_line("\\d")
    assert "typed" not in shell.expect(PROMPT)


def test_ctrl_c_cancels_a_running_query_and_the_shell_carries_on(shell: Terminal) -> None:
    shell.child.send(SLOW_QUERY + "\r")
    shell.expect(SLOW_QUERY)
    for _attempt in range(20):  # the interrupt counts once the query is running
        time.sleep(0.5)
        shell.child.sendintr()
        try:
            shell.expect("query cancelled", timeout=2)
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("Ctrl-C did not cancel the query")
    shell.prompt()
    assert lines(shell.run("SELECT 'still here' AS s;", "still here"))[-1] == "s"
    assert shell.child.isalive()


def test_ctrl_c_at_the_prompt_clears_the_input(shell: Terminal) -> None:
    shell.child.send("SELECT this is never run")
    shell.expect("never run")
    shell.child.sendintr()
    shell.prompt()
    shown = shell.run("SELECT 7 AS seven;", "\n7")
    assert "error" not in shown and shell.child.isalive()


def test_ctrl_d_exits_0(shell: Terminal) -> None:
    shell.child.sendcontrol("d")
    assert shell.exit_code() == 0


def test_a_syntax_error_points_at_its_line_and_column(shell: Terminal) -> None:
    shell.send_line("SELECT key\rFROM greetings\rWHERE ((;")
    shell.expect("error: ")
    report = shell.expect(PROMPT).splitlines()
    assert "(line 3, column 8)" in report[0]
    assert report[1:3] == ["  WHERE ((", "         ^"]
    shell.run("SELECT 1 AS fine;", "fine\n1\n")  # the shell still works


def test_an_unknown_backslash_command_is_one_error_line(shell: Terminal) -> None:
    shown = shell.run("\\nope", "lists the commands)")
    assert "error: unknown command \\nope" in shown
    assert "\\timing" in shell.run("\\?", "\\q")


def test_an_unreachable_server_exits_3(tmp_path: Path) -> None:
    terminal = Terminal(f"http://127.0.0.1:{free_port()}", tmp_path / "history")
    terminal.expect("cannot reach")
    assert terminal.exit_code() == 3


def test_a_server_that_goes_away_is_an_error_not_the_end(start_server, tmp_path: Path) -> None:
    server = start_server()
    terminal = Terminal(server.http_url, tmp_path / "history", "--format", "csv")
    terminal.prompt()
    terminal.run("SELECT 1 AS up;", "up")
    server.kill()
    terminal.run("SELECT 2 AS gone;", "error: cannot reach")
    assert terminal.quit() == 0


def test_history_that_cannot_be_written_only_warns(server: ServerProcess, tmp_path: Path) -> None:
    terminal = Terminal(server.http_url, tmp_path / "missing" / "dir" / "history", "-f", "csv")
    terminal.expect("warning: history is not saved")
    terminal.prompt()
    terminal.run("SELECT 3 AS three;", "three")
    assert terminal.quit() == 0


def script(http: str, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STREAMCTL, "sql", "--http", http, *args],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_piped_script_runs_every_statement_in_order(server: ServerProcess) -> None:
    result = script(
        server.http_url,
        "-- counts\nSELECT count(*) AS n FROM greetings;\nSELECT 'x;y' AS s;\nSELECT 3 AS last",
        "--format",
        "csv",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["n", "3", "s", "x;y", "last", "3"]
    assert script(server.http_url, "").returncode == 0
    assert script(server.http_url, ";;\n-- nothing\n").stdout == ""


def test_a_piped_script_stops_at_its_first_error(server: ServerProcess) -> None:
    result = script(server.http_url, "SELECT 1 AS a;\nSELEC 2;\nSELECT 3 AS c;", "-f", "csv")
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["a", "1"]
    assert result.stderr.splitlines() == [
        "error: Invalid expression / Unexpected token near '2' (line 1, column 7)",
        "  SELEC 2",
        "        ^",
    ]
    unterminated = script(server.http_url, "SELECT 'never closed;")
    assert unterminated.returncode == 1 and "error:" in unterminated.stderr


def test_a_piped_script_without_a_server_exits_3() -> None:
    result = script(f"http://127.0.0.1:{free_port()}", "SELECT 1;")
    assert result.returncode == 3 and "cannot reach" in result.stderr
