"""Through a real server: key lookups and narrow time ranges read only the matching segments.

Records go in over REST, one segment per request (``segment.bytes`` = 1), each request a
different hour with its own keys; the test waits until every segment has its columnar
companion (written after the commit, or by the backfill), then checks the rows and the
``stats`` of ``POST /api/v1/sql``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ...conftest import ServerProcess, wait_for

API = "/api/v1"
SEGMENTS = 5
PER_SEGMENT = 20
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """One server for the module: its tests only read."""
    process = ServerProcess(tmp_path_factory.mktemp("pruning") / "data").start()
    yield process
    process.kill()


@pytest.fixture(scope="module")
def orders(server: ServerProcess) -> httpx.Client:
    client = httpx.Client(base_url=server.http_url, timeout=30)
    configs = {"segment.bytes": 1, "retention.ms": -1}
    created = client.post(
        f"{API}/topics", json={"name": "orders", "partitions": 1, "configs": configs}
    )
    assert created.status_code in (200, 201), created.text
    for s in range(SEGMENTS):
        records = [
            {
                "key": f"o-{s}-{i}",
                "value": f'{{"s": {s}, "i": {i}}}',
                "timestamp_ms": T0 + s * HOUR + i,
            }
            for i in range(PER_SEGMENT)
        ]
        reply = client.post(f"{API}/topics/orders/records", json={"records": records})
        assert reply.status_code == 200, reply.text
    objects = Path(server.data_dir) / "objects"

    def every_companion() -> bool:
        segments = {p.name for p in objects.rglob("*.seg")}
        companions = {p.name.removesuffix(".parquet") for p in objects.rglob("*.seg.parquet")}
        return len(segments) == SEGMENTS and segments <= companions

    wait_for(every_companion, 60, "every segment's companion")
    yield client
    client.close()


def sql(client: httpx.Client, statement: str) -> dict:
    reply = client.post(f"{API}/sql", json={"sql": statement})
    assert reply.status_code == 200, reply.text
    return reply.json()


def read_skipped(answer: dict) -> tuple[int, int]:
    return answer["stats"]["segments_read"], answer["stats"]["segments_skipped"]


def test_key_lookup_reads_one_segment(orders):
    answer = sql(orders, "SELECT key, value FROM orders WHERE key = 'o-3-7'")
    assert answer["rows"] == [["o-3-7", '{"s": 3, "i": 7}']]
    assert read_skipped(answer) == (1, SEGMENTS - 1)


def test_key_in_list_reads_the_segments_holding_those_keys(orders):
    answer = sql(
        orders, "SELECT key FROM orders WHERE key IN ('o-0-1', 'o-4-19', 'nope') ORDER BY key"
    )
    assert answer["rows"] == [["o-0-1"], ["o-4-19"]]
    assert read_skipped(answer) == (2, SEGMENTS - 2)


@pytest.mark.parametrize("literal", [lambda ms: f"'{iso(ms)}'", lambda ms: str(ms)])
def test_narrow_time_range_reads_one_segment_as_iso_or_epoch_ms(orders, literal):
    lo, hi = T0 + 2 * HOUR + 5, T0 + 2 * HOUR + 8
    answer = sql(
        orders,
        f'SELECT "offset" FROM orders WHERE timestamp >= {literal(lo)} '
        f"AND timestamp < {literal(hi)} ORDER BY 1",
    )
    assert answer["rows"] == [[2 * PER_SEGMENT + 5], [2 * PER_SEGMENT + 6], [2 * PER_SEGMENT + 7]]
    assert read_skipped(answer) == (1, SEGMENTS - 1)


def test_hostile_keys_match_nothing_and_read_nothing(orders):
    answer = sql(orders, "SELECT COUNT(*) FROM orders WHERE key IN ('', 'o''-1', '\u00e9\u0000x')")
    assert answer["rows"] == [[0]]
    assert read_skipped(answer) == (0, SEGMENTS)
    full = sql(orders, "SELECT COUNT(key) FROM orders")
    assert full["rows"] == [[SEGMENTS * PER_SEGMENT]]
    assert read_skipped(full) == (SEGMENTS, 0)
    counted = sql(orders, "SELECT COUNT(*) FROM orders")  # from offsets: nothing read
    assert counted["rows"] == [[SEGMENTS * PER_SEGMENT]]
    assert read_skipped(counted) == (0, SEGMENTS)
