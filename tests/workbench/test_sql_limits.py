"""SQL limits on a real server started with small `--sql-*` settings: each limit gives its own
clear error to that client, and the server keeps answering everyone else."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from streamhouse.workbench.settings import SettingsError, load_settings

from ..conftest import ServerProcess, wait_for
from .test_sql_stream import RUNNING, SLOW, sql_metrics, streamed

API = "/api/v1"
FLAGS = [
    "--sql-timeout-s", "2",
    "--sql-row-limit", "100",
    "--sql-memory-limit", "100MB",
    "--sql-max-concurrent", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("sqllimits") / "data", *FLAGS).start()
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http_url, timeout=60) as c:
        yield c


def still_serving(client: httpx.Client) -> None:
    answer = client.post(f"{API}/sql", json={"sql": "SELECT 7 AS n"})
    assert answer.status_code == 200 and answer.json()["rows"] == [[7]]


@pytest.mark.parametrize("path", ["/sql", "/sql/stream"])
def test_a_query_past_the_timeout_is_a_504_saying_so(client: httpx.Client, path: str) -> None:
    response = client.post(f"{API}{path}", json={"sql": SLOW})
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["reason"] == "QUERY_TIMEOUT"
    assert "timed out after 2 s" in error["message"]
    still_serving(client)


def test_a_stream_past_the_timeout_ends_with_a_timeout_line(client: httpx.Client) -> None:
    sql = "SELECT n, md5(n::VARCHAR) FROM range(10000000000) AS t(n)"
    with client.stream("POST", f"{API}/sql/stream", json={"sql": sql}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            last = line
    assert '"QUERY_TIMEOUT"' in last
    still_serving(client)


@pytest.mark.parametrize("path", ["/sql", "/sql/stream"])
def test_a_query_over_the_memory_budget_fails_clearly(client: httpx.Client, path: str) -> None:
    response = client.post(f"{API}{path}", json={"sql": "SELECT list(range) FROM range(50000000)"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["reason"] == "QUERY_MEMORY_LIMIT"
    assert "memory budget of 95 MiB" in error["message"]
    assert "Narrow it" in error["message"]
    still_serving(client)


def test_the_row_limit_truncates_the_bounded_answer_only(client: httpx.Client) -> None:
    bounded = client.post(f"{API}/sql", json={"sql": "SELECT * FROM range(1000)"}).json()
    assert bounded["row_count"] == 100 and bounded["truncated"] is True
    assert bounded["rows"][-1] == [99]
    exact = client.post(f"{API}/sql", json={"sql": "SELECT * FROM range(100)"}).json()
    assert exact["row_count"] == 100 and exact["truncated"] is False
    _, *rows, end = streamed(client, "SELECT * FROM range(1000)")
    assert len(rows) == end["row_count"] == 1000


def test_past_the_concurrency_cap_a_query_gets_429(client: httpx.Client) -> None:
    slow_answer: list[httpx.Response] = []

    def run_slow() -> None:
        with httpx.Client(base_url=client.base_url, timeout=60) as own:
            slow_answer.append(own.post(f"{API}/sql", json={"sql": SLOW}))

    runner = threading.Thread(target=run_slow)
    runner.start()
    try:
        wait_for(lambda: sql_metrics(client)[RUNNING] == 1, 10, "the slow query to start")
        for path in ("/sql", "/sql/stream"):
            refused = client.post(f"{API}{path}", json={"sql": "SELECT 1"})
            assert refused.status_code == 429
            error = refused.json()["error"]
            assert error["reason"] == "TOO_MANY_QUERIES"
            assert "sql_max_concurrent=1" in error["message"]
    finally:
        runner.join()
    assert slow_answer[0].status_code == 504
    still_serving(client)


MALFORMED = [
    (b'{"sql": "SELECT 1"', 400),  # not JSON
    (b"SELECT 1", 400),
    (b"{}", 422),  # no sql
    (b'{"sql": 42}', 422),
    (b'{"sql": ["SELECT 1"]}', 422),
    (b'{"sql": ""}', 422),
    (b'{"sql": "SELECT 1", "limit": 5}', 422),  # unknown field
    (b'["SELECT 1"]', 422),
    (b'{"sql": "' + b"x" * 1_000_001 + b'"}', 422),  # past the 1,000,000 characters allowed
    (b'{"sql": "' + b"x" * 7_000_000 + b'"}', 413),  # refused before it is read whole
]


@pytest.mark.parametrize("path", ["/sql", "/sql/stream"])
@pytest.mark.parametrize(("body", "status"), MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_bodies_get_json_errors(
    client: httpx.Client, path: str, body: bytes, status: int
) -> None:
    response = client.post(
        f"{API}{path}", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    reason = "MESSAGE_TOO_LARGE" if status == 413 else "INVALID_REQUEST"
    assert response.json()["error"]["reason"] == reason


def test_sql_errors_carry_line_column_and_position(client: httpx.Client) -> None:
    sql = "SELECT 1\n  FROM range(3)\n WHERE"
    error = client.post(f"{API}/sql", json={"sql": sql}).json()["error"]
    assert error["reason"] == "INVALID_SQL"
    assert sql[error["position"] :].startswith("WHERE")
    assert (error["line"], error["column"]) == (3, 2)


@pytest.mark.parametrize("size", ["lots", "-5MB", "12 parsecs"])
def test_a_bad_memory_limit_setting_names_it(size: str) -> None:
    with pytest.raises(SettingsError, match="sql_memory_limit"):
        load_settings({"sql_memory_limit": size}, environ={})


def test_sizes_are_read_as_people_write_them() -> None:
    assert load_settings({"sql_memory_limit": "512MB"}, environ={}).sql_memory_limit == 512e6
    env = {"STREAMHOUSE_SQL_MEMORY_LIMIT": "2GiB", "STREAMHOUSE_SQL_MAX_CONCURRENT": "3"}
    settings = load_settings({}, environ=env)
    assert (settings.sql_memory_limit, settings.sql_max_concurrent) == (2 * 1024**3, 3)
