"""`POST /api/v1/sql` on two agents sharing one PostgreSQL and one S3 bucket.

A topic's partitions are spread over both agents; each holds committed segments (acks=all
commits in a cluster) and an uncommitted tail in its leader's memory (a long segment.ms keeps
it there). Whichever agent is asked, a query sees every partition up to its high watermark, and
asking never moves a lease. With one agent killed, a query that needs its partitions fails
naming the partition and the agent until the survivor has taken them over, and then answers
from what was committed.
"""

from __future__ import annotations

import json

import httpx

from tests.conftest import ServerProcess, wait_for

API = "/api/v1"
TOPIC = "orders"
PARTITIONS = 4
COMMITTED_PER_PARTITION = 5  # acks=all: in S3 and the metadata store
TAIL_PER_PARTITION = 3  # acks=leader: only in the leader's memory and WAL
LEASE_TTL_MS = "6000"  # after a kill -9 the dead agent's leases live for at least 4 s more

QUERIES = [
    "SELECT COUNT(*) AS n FROM orders",
    'SELECT partition, COUNT(*) AS n, MAX("offset") AS last FROM orders GROUP BY 1 ORDER BY 1',
    'SELECT partition, "offset", key, value FROM orders ORDER BY 1, 2',
    "SELECT partition, \"offset\", value FROM orders WHERE key IN ('k2', 'k7') ORDER BY 1, 2",
    "SELECT partition, \"offset\" FROM orders WHERE key = 'k37'",
]


def sql(agent: ServerProcess, query: str) -> httpx.Response:
    return httpx.post(f"{agent.http_url}{API}/sql", json={"sql": query}, timeout=60)


def rows_of(agent: ServerProcess, query: str) -> list[list]:
    response = sql(agent, query)
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def describe(agent: ServerProcess) -> list[dict]:
    response = httpx.get(f"{agent.http_url}{API}/topics/{TOPIC}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["partitions"]


def leases(agent: ServerProcess) -> dict[int, tuple[str, int]]:
    return {p["partition"]: (p["leader_agent"], p["leader_epoch"]) for p in describe(agent)}


def produce(leader: ServerProcess, partition: int, first: int, count: int, acks: str) -> list:
    """Produces records k<first>..; returns their (partition, offset, key, value) rows."""
    records = [
        {"key": f"k{i}", "value": json.dumps({"id": i}), "partition": partition}
        for i in range(first, first + count)
    ]
    response = httpx.post(
        f"{leader.http_url}{API}/topics/{TOPIC}/records",
        json={"records": records, "acks": acks},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    base = response.json()["partitions"][0]["base_offset"]
    return [[partition, base + n, r["key"], r["value"]] for n, r in enumerate(records)]


def answers(rows: list[list]) -> list[list[list]]:
    """What each query in QUERIES must answer over ``rows`` (partition, offset, key, value)."""
    counts = {p: [r for r in rows if r[0] == p] for p in sorted({r[0] for r in rows})}
    return [
        [[len(rows)]],
        [[p, len(rs), max(r[1] for r in rs)] for p, rs in counts.items()],
        sorted(rows),
        sorted([r[0], r[1], r[3]] for r in rows if r[2] in ("k2", "k7")),
        [[r[0], r[1]] for r in rows if r[2] == "k37"],
    ]


def test_every_agent_answers_over_all_partitions_and_fails_over(start_server, cluster_flags):
    flags = [*cluster_flags, "--lease-ttl-ms", LEASE_TTL_MS]
    first, second = start_server(*flags), start_server(*flags)
    by_address = {first.grpc_address: first, second.grpc_address: second}
    created = httpx.post(
        f"{first.http_url}{API}/topics",
        json={"name": TOPIC, "partitions": PARTITIONS, "configs": {"segment.ms": 3_600_000}},
        timeout=30,
    )
    assert created.status_code in (200, 201), created.text

    def spread() -> dict[int, ServerProcess] | None:
        described = describe(first)
        leaders = [by_address.get(p["leader_address"]) for p in described]
        if None in leaders or any(leaders.count(a) != PARTITIONS // 2 for a in (first, second)):
            return None
        return dict(enumerate(leaders))

    leader_of = wait_for(spread, 60, "the partitions to spread two and two over the agents")

    rows: list[list] = []
    committed: list[list] = []
    for p, leader in leader_of.items():
        done = produce(leader, p, 10 * p, COMMITTED_PER_PARTITION, "all")
        committed += done
        rows += done
        rows += produce(leader, p, 10 * p + COMMITTED_PER_PARTITION, TAIL_PER_PARTITION, "leader")
    # The tails are in memory only: each leader has committed less than it holds.
    for agent in (first, second):
        for p in describe(agent):
            if leader_of[p["partition"]] is agent:
                assert p["committed_offset"] == COMMITTED_PER_PARTITION
                assert p["next_offset"] == COMMITTED_PER_PARTITION + TAIL_PER_PARTITION

    before = leases(first)
    expected = answers(rows)
    for agent in (first, second):
        got = [rows_of(agent, q) for q in QUERIES]
        for query, want, have in zip(QUERIES, expected, got, strict=True):
            assert have == want, f"{agent.http_url}: {query}"
    # A partition filter reads just that partition, led here or elsewhere.
    for p in leader_of:
        for agent in (first, second):
            query = f'SELECT "offset", key FROM orders WHERE partition = {p} ORDER BY 1'
            assert rows_of(agent, query) == [[r[1], r[2]] for r in rows if r[0] == p]
    # Bad and hostile queries get a clear answer from either agent, which keeps serving.
    for agent in (first, second):
        for query, status, answer in [
            ("SELECT * FROM nosuch", 400, None),
            ("SELECT FROM orders WHERE", 400, None),
            ("SELECT COUNT(*) FROM orders WHERE partition = 99", 200, [[0]]),
            ('SELECT COUNT(*) FROM orders WHERE "offset" > 9223372036854775806', 200, [[0]]),
            ('SELECT COUNT(*) FROM orders WHERE "offset" < 0', 200, [[0]]),
        ]:
            response = sql(agent, query)
            assert response.status_code == status, (query, response.text)
            if answer is not None:
                assert response.json()["rows"] == answer, query
    assert leases(first) == before == leases(second)  # asking moved no lease

    # kill -9 the second agent: its leases stay live for a while, its tails are gone.
    dead_agent = before[next(p for p, a in leader_of.items() if a is second)][0]
    dead_partitions = sorted(p for p, a in leader_of.items() if a is second)
    mine = sorted(p for p, a in leader_of.items() if a is first)
    second.kill()
    failed = sql(first, QUERIES[0])
    assert failed.status_code == 503, failed.text
    error = failed.json()["error"]
    assert error["reason"] == "NOT_LEADER"
    assert error["leader_address"] == second.grpc_address
    assert f"{TOPIC}[{dead_partitions[0]}]" in error["message"]
    assert dead_agent in error["message"]
    # The survivor keeps serving, and queries that need only its partitions still succeed.
    only_mine = f"SELECT COUNT(*) FROM orders WHERE partition IN ({mine[0]}, {mine[1]})"
    assert rows_of(first, only_mine) == [[sum(1 for r in rows if r[0] in mine)]]

    # Once the survivor leads every partition, it answers from what the dead agent committed.
    def failed_over() -> bool:
        return sql(first, QUERIES[0]).status_code == 200

    wait_for(failed_over, 60, "the survivor to take over the dead agent's partitions")
    survived = [r for r in rows if r[0] in mine] + [r for r in committed if r[0] in dead_partitions]
    got = [rows_of(first, q) for q in QUERIES]
    assert got == answers(survived)
