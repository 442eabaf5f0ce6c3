"""Hostile SQL: statements built to exhaust the parser get a 400 and the agent keeps serving."""

from __future__ import annotations

import httpx
import pytest

from ..conftest import ServerProcess

API = "/api/v1"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    server = ServerProcess(tmp_path_factory.mktemp("hostile") / "data").start()
    with httpx.Client(base_url=server.http_url, timeout=120) as client:
        created = client.post(f"{API}/topics", json={"name": "t", "partitions": 2})
        assert created.status_code == 201, created.text
        yield client
    server.kill()


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT " + "(" * 3000 + "1" + ")" * 3000,
        "SELECT * FROM " + "(SELECT * FROM " * 500 + "t" + ")" * 500,
        "SELECT * FROM t WHERE " + "NOT " * 5000 + "true",
        "SELECT * FROM t WHERE " + " AND ".join(["key = 'a'"] * 20000),
    ],
    ids=["parentheses", "subqueries", "not", "and-chain"],
)
def test_statements_nested_past_the_parser_are_a_400(client: httpx.Client, statement: str):
    response = client.post(f"{API}/sql", json={"sql": statement})
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert error["reason"] in ("INVALID_SQL", "QUERY_FAILED")
    assert "nested too deeply" in error["message"] or "depth" in error["message"]
    assert client.post(f"{API}/sql", json={"sql": "SELECT 1 AS one"}).json()["rows"] == [[1]]
