"""`POST /api/v1/sql/stream` against a real server process: same answers as the bounded
endpoint, every row of a big result in bounded server memory, and a client that goes away
stops its query."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from ..conftest import ServerProcess, wait_for
from .test_sql_api import produce

API = "/api/v1"
SLOW = "SELECT count(*) FROM range(100000000) a, range(100000000) b"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("sqlstream") / "data").start()
    try:
        with httpx.Client(base_url=process.http_url, timeout=30) as client:
            created = client.post(f"{API}/topics", json={"name": "orders", "partitions": 3})
            assert created.status_code == 201, created.text
            records = [
                {
                    "key": f"c{i % 5}",
                    "value": json.dumps({"id": i, "note": 'quote " back \\ tab \t é'}),
                    "partition": i % 3,
                }
                for i in range(300)
            ]
            produce(client, "orders", records)
        yield process
    finally:
        process.kill()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http_url, timeout=120) as c:
        yield c


def streamed(client: httpx.Client, sql: str, accept: str | None = None) -> list[dict | list]:
    """Every NDJSON line of a streamed answer, parsed."""
    headers = {"accept": accept} if accept else {}
    with client.stream("POST", f"{API}/sql/stream", json={"sql": sql}, headers=headers) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith(accept or "application/x-ndjson")
        return [json.loads(line) for line in r.iter_lines() if line]


def sql_metrics(client: httpx.Client) -> dict[str, float]:
    values = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("streamhouse_sql_queries_"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


CANCELLED = 'streamhouse_sql_queries_total{outcome="cancelled"}'
RUNNING = "streamhouse_sql_queries_running"

SAME_AS_BOUNDED = [
    'SELECT partition, "offset", key, value, timestamp, headers FROM orders ORDER BY 1, 2',
    "SELECT key, count(*) AS n, avg(json_extract(value, '$.id')::INT) AS mean FROM orders "
    "GROUP BY key ORDER BY key",
    "SELECT value_bytes, NULL AS nothing, 1.5::DECIMAL(4,2) AS d, [1, 2] AS l, "
    '\'NaN\'::DOUBLE AS nan FROM orders WHERE partition = 1 AND "offset" < 3 ORDER BY "offset"',
    "SELECT * FROM orders WHERE partition = 7",
    "SHOW TOPICS",
    "DESCRIBE orders",
]


@pytest.mark.parametrize("sql", SAME_AS_BOUNDED)
def test_stream_answers_like_the_bounded_endpoint(client: httpx.Client, sql: str) -> None:
    bounded = client.post(f"{API}/sql", json={"sql": sql})
    assert bounded.status_code == 200, bounded.text
    expected = bounded.json()
    header, *rows, end = streamed(client, sql)
    assert header == {"columns": expected["columns"]}
    assert rows == expected["rows"]
    assert end["row_count"] == expected["row_count"] == len(rows)
    assert end["stats"] == expected.get("stats")


def test_stats_say_what_the_scans_read(client: httpx.Client) -> None:
    *_, pruned = streamed(client, "SELECT count(value) FROM orders WHERE partition = 1")
    *_, full = streamed(client, "SELECT count(value) FROM orders")
    assert full["stats"]["rows_scanned"] == 300
    assert pruned["stats"]["rows_scanned"] == 100
    assert 0 < pruned["stats"]["bytes_read"] < full["stats"]["bytes_read"]
    *_, counted = streamed(client, "SELECT count(*) FROM orders")  # from offsets alone
    assert counted["stats"]["segments_read"] == 0 and counted["stats"]["bytes_read"] == 0


def test_server_sent_events_carry_the_same_rows(client: httpx.Client) -> None:
    sql = 'SELECT "offset", value FROM orders WHERE partition = 0 ORDER BY 1'
    expected = client.post(f"{API}/sql", json={"sql": sql}).json()
    with client.stream(
        "POST", f"{API}/sql/stream", json={"sql": sql}, headers={"accept": "text/event-stream"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = response.read().decode().strip().split("\n\n")
    parsed = [
        (event.split("\n")[0].removeprefix("event: "), json.loads(event.split("\n")[1][6:]))
        for event in events
    ]
    assert parsed[0] == ("columns", {"columns": expected["columns"]})
    assert [row for name, rows in parsed if name == "rows" for row in rows] == expected["rows"]
    assert parsed[-1][0] == "end" and parsed[-1][1]["row_count"] == 100


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_millions_of_rows_stream_complete_in_bounded_memory(
    server: ServerProcess, client: httpx.Client
) -> None:
    """5M rows are ~150 MB of NDJSON and would be >1 GB as Python rows held at once."""
    assert server.proc is not None
    pid = server.proc.pid
    baseline = rss_bytes(pid)
    peak = baseline
    newlines = 0
    sql = "SELECT range AS i, 'row ' || range AS s FROM range(5000000)"
    with client.stream("POST", f"{API}/sql/stream", json={"sql": sql}) as response:
        assert response.status_code == 200
        tail = b""
        for n, chunk in enumerate(response.iter_bytes()):
            newlines += chunk.count(b"\n")
            tail = (tail + chunk)[-200:]
            if n % 50 == 0:
                peak = max(peak, rss_bytes(pid))
    last_row, end = (json.loads(line) for line in tail.decode().splitlines()[-2:])
    assert newlines == 5_000_000 + 2  # header, rows, end
    assert last_row == [4_999_999, "row 4999999"]
    assert end["row_count"] == 5_000_000
    assert peak - baseline < 400 * 1024**2, f"server RSS grew by {(peak - baseline) >> 20} MiB"


def test_an_error_after_the_first_rows_ends_the_stream_with_an_error_line(
    client: httpx.Client,
) -> None:
    sql = (
        "SELECT CASE WHEN n < 1000000 THEN n ELSE error('boom at ' || n) END AS i "
        "FROM range(2000000) AS t(n)"
    )
    header, *rows, last = streamed(client, sql)
    assert header["columns"] == [{"name": "i", "type": "BIGINT"}]
    assert rows and rows[0] == [0]
    assert last["error"]["reason"] == "QUERY_FAILED"
    assert "boom at" in last["error"]["message"]
    assert client.post(f"{API}/sql", json={"sql": "SELECT 1"}).status_code == 200


def test_errors_before_the_first_row_are_plain_json_errors(client: httpx.Client) -> None:
    bad = client.post(f"{API}/sql/stream", json={"sql": "SELECT *\nFROM orders WHERE"})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["reason"] == "INVALID_SQL"
    assert (error["line"], error["column"]) == (2, 13)
    assert error["position"] == len("SELECT *\nFROM orders ")
    unknown = client.post(f"{API}/sql/stream", json={"sql": "SELECT * FROM ordrs"})
    assert unknown.status_code == 400 and "orders" in unknown.json()["error"]["message"]


def test_a_client_leaving_mid_stream_stops_the_query(client: httpx.Client) -> None:
    before = sql_metrics(client).get(CANCELLED, 0)
    sql = "SELECT range, md5(range::VARCHAR) FROM range(10000000000)"
    with client.stream("POST", f"{API}/sql/stream", json={"sql": sql}) as response:
        lines = response.iter_lines()
        assert "columns" in json.loads(next(lines))
        assert len(json.loads(next(lines))) == 2
    wait_for(lambda: sql_metrics(client)[RUNNING] == 0, 10, "the query to stop")
    assert sql_metrics(client)[CANCELLED] == before + 1
    assert client.post(f"{API}/sql", json={"sql": "SELECT 42"}).json()["rows"] == [[42]]


def post_and_leave(server: ServerProcess, path: str, sql: str) -> socket.socket:
    """Sends a SQL request on a raw connection and returns it without reading an answer."""
    body = json.dumps({"sql": sql}).encode()
    sock = socket.create_connection(("127.0.0.1", server.http_port))
    head = (
        f"POST {API}{path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


@pytest.mark.parametrize("path", ["/sql", "/sql/stream"])
def test_a_client_leaving_before_the_answer_stops_the_query(
    server: ServerProcess, client: httpx.Client, path: str
) -> None:
    before = sql_metrics(client).get(CANCELLED, 0)
    sock = post_and_leave(server, path, SLOW)
    wait_for(lambda: sql_metrics(client)[RUNNING] == 1, 10, "the query to start")
    sock.close()
    # The timeout is 30 s: stopping well before it means the disconnect interrupted DuckDB.
    wait_for(lambda: sql_metrics(client)[RUNNING] == 0, 10, "the query to stop")
    assert sql_metrics(client)[CANCELLED] == before + 1
    assert client.post(f"{API}/sql", json={"sql": "SELECT 42"}).json()["rows"] == [[42]]


def test_concurrent_streams_each_get_their_own_rows(client: httpx.Client) -> None:
    answers: dict[int, list] = {}

    def run(n: int) -> None:
        with httpx.Client(base_url=client.base_url, timeout=60) as own:
            answers[n] = streamed(own, f"SELECT range * {n} FROM range(50000)")

    threads = [threading.Thread(target=run, args=(n,)) for n in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, (_, *rows, end) in answers.items():
        assert end["row_count"] == 50000 and rows[-1] == [49999 * n]
