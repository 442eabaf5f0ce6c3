"""Point-in-time SQL over a topic's history, against DuckDB reading the same rows from Parquet.

Run alone with ``python -m benchmarks.bench_sql [--events N]`` (env ``BENCH_SQL_EVENTS``; the
default is 10 million). A real ``streamhouse serve`` is loaded over gRPC with JSON events of
about 100 bytes (``{"user":"u123","kind":"click","amount":12.5,"page":...}``) keyed by order id,
their timestamps spread in order over ten days, into 6 partitions; loading is not measured. The
benchmark waits until every record is in a committed segment and every segment has its columnar
companion (written after the commit, or by the backfill for those the writer dropped).

Then each query runs ``REPEATS`` times through ``POST /api/v1/sql`` and the best time is kept:
``COUNT(*)``, ``GROUP BY`` a JSON field, a key lookup, and a one-hour time range. The same rows
are written to one local Parquet file and the same queries run in plain DuckDB (same thread
count as the server's queries); the report gives rows/s (rows of the topic covered per second),
the latency, the segments read and skipped when the API reports them, and the ratio
StreamHouse time / DuckDB time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Report, peak_rss_mb, print_report
from benchmarks.server import cpu_seconds, free_port, server_rss_mb

TOPIC = "clicks"
PARTITIONS = 6
DEFAULT_EVENTS = 10_000_000
CHUNK = 250_000
T_START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SPAN_MS = 10 * 24 * 3600 * 1000
REPEATS = 3
KINDS = ["click", "view", "purchase", "scroll", "signup"]
DUCKDB_THREADS = 2  # the server's per-query setting (DuckDBSettings.threads)
LOOKUP_INDEX = 4_321_987


def events_of(start: int, count: int, total: int):
    """Rows ``start .. start+count`` of the data set: keys, JSON values, timestamps (Arrow)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    i = np.arange(start, start + count, dtype=np.int64)

    def text(numbers) -> pa.Array:
        return pc.cast(pa.array(numbers), pa.string())

    keys = pc.binary_join_element_wise("order-", pc.utf8_lpad(text(i), 9, "0"), "")
    kinds = pa.array(KINDS).take(pa.array(i % len(KINDS)))
    amount = text((i * 37 % 100_000) / 100)
    values = pc.binary_join_element_wise(
        '{"user":"u', text(i * 7919 % 100_000),
        '","kind":"', kinds,
        '","amount":', amount,
        ',"page":"/products/', text(i * 31 % 5000),
        '","session":"s', text(i * 104_729 % 1_000_000_007),
        '"}', "",
    )  # fmt: skip
    timestamps = T_START + i * SPAN_MS // total
    return keys, values, pa.array(timestamps)


def lookup_key(total: int) -> str:
    return f"order-{LOOKUP_INDEX % total:09d}"


def one_hour(total: int) -> tuple[str, str]:
    """An hour in the middle of the data set, as ISO strings (UTC)."""
    import datetime as dt

    start = dt.datetime.fromtimestamp((T_START + SPAN_MS // 2) / 1000, dt.UTC)
    end = start + dt.timedelta(hours=1)
    return start.strftime("%Y-%m-%dT%H:%M:%S"), end.strftime("%Y-%m-%dT%H:%M:%S")


def queries(total: int, table: str, key_col: str = "key") -> dict[str, str]:
    lo, hi = one_hour(total)
    return {
        "COUNT(*)": f"SELECT COUNT(*) AS n FROM {table}",
        "GROUP BY a JSON field": (
            f"SELECT json_extract_string(value, '$.kind') AS kind, COUNT(*) AS n "
            f"FROM {table} GROUP BY kind ORDER BY kind"
        ),
        "key lookup": f"SELECT * FROM {table} WHERE {key_col} = '{lookup_key(total)}'",
        "one-hour time range": (
            f"SELECT COUNT(*) AS n, SUM(CAST(json_extract(value, '$.amount') AS DOUBLE)) AS total "
            f"FROM {table} WHERE timestamp >= '{lo}' AND timestamp < '{hi}'"
        ),
    }


def covered_rows(name: str, total: int) -> int:
    """Rows of the topic a query is about, for rows/s (a lookup covers the whole topic)."""
    return total


# ----------------------------------------------------------------------------------- server
def start_server(root: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """A real server (embedded defaults under ``root``); returns it, its gRPC and HTTP address."""
    import httpx

    http, grpc_port, kafka_port = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "streamhouse.workbench.cli", "serve",
            "--data-dir", str(root / "data"), "--http-port", str(http),
            "--grpc-port", str(grpc_port), "--kafka-port", str(kafka_port),
            "--log-level", "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return proc, f"127.0.0.1:{grpc_port}", base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready")


async def load(address: str, total: int) -> None:
    """Sends every event over gRPC and waits until they are all in committed segments."""
    from streamhouse.broker.client import AsyncAdminClient, AsyncProducer

    admin = AsyncAdminClient(address)
    # Kept forever: the events are stamped in the past, which retention would delete.
    await admin.create_topic(TOPIC, partitions=PARTITIONS, configs={"retention.ms": "-1"})
    try:
        async with AsyncProducer(address, acks="leader", linger_ms=5) as producer:
            for start in range(0, total, CHUNK):
                keys, values, stamps = events_of(start, min(CHUNK, total - start), total)
                await producer.send_many(TOPIC, values, keys, timestamp_ms=stamps)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            described = await admin.describe_topic(TOPIC)
            if sum(p.committed_offset for p in described.partitions) >= total:
                return
            await asyncio.sleep(0.5)
        raise RuntimeError("segments were not committed in time")
    finally:
        await admin.close()


def wait_for_companions(objects: Path, timeout_s: float = 900) -> tuple[int, float]:
    """Waits until every segment object has its companion; returns the count and the wait."""
    started = time.monotonic()
    while True:
        segments = {p.name for p in objects.rglob("*.seg")}
        companions = {p.name[: -len(".parquet")] for p in objects.rglob("*.seg.parquet")}
        if segments and segments <= companions:
            return len(segments), time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"{len(segments - companions)} segments still lack a companion")
        time.sleep(1)


def run_sql(client, sql: str) -> tuple[float, dict]:
    """Best-of-REPEATS wall time (s) of one statement through the API, and its last answer.

    ``client`` keeps its connection open, as an application or the workbench does (a new
    httpx client per request costs ~20 ms of its own setup)."""
    best, answer, server_ms = float("inf"), {}, float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        response = client.post("/api/v1/sql", json={"sql": sql}, timeout=300)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{sql}: {response.status_code} {response.text}")
        best, answer = min(best, elapsed), response.json()
        server_ms = min(server_ms, answer["elapsed_ms"])
    return best, {**answer, "elapsed_ms": server_ms}


# ----------------------------------------------------------------------------------- DuckDB
def write_parquet(path: Path, total: int) -> None:
    """The same rows (key and value as text, as the SQL view shows them) in one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [("key", pa.string()), ("value", pa.string()), ("timestamp", pa.timestamp("ms"))]
    )
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for start in range(0, total, CHUNK):
            keys, values, stamps = events_of(start, min(CHUNK, total - start), total)
            writer.write_table(
                pa.table([keys, values, stamps.cast(pa.timestamp("ms"))], schema=schema)
            )


def run_duckdb(path: Path, sql: str) -> tuple[float, list]:
    import duckdb

    con = duckdb.connect(config={"threads": DUCKDB_THREADS})
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE VIEW bench AS SELECT * FROM read_parquet('{path}')")
    best, rows = float("inf"), []
    for _ in range(REPEATS):
        started = time.perf_counter()
        rows = con.execute(sql).fetchall()
        best = min(best, time.perf_counter() - started)
    con.close()
    return best, rows


# ------------------------------------------------------------------------------------- run
def run(report: Report, total: int | None = None) -> None:
    import httpx

    total = total or int(os.environ.get("BENCH_SQL_EVENTS", DEFAULT_EVENTS))
    with tempfile.TemporaryDirectory(prefix="sh-bench-sql-") as tmp:
        root = Path(tmp)
        proc, address, base = start_server(root)
        try:
            started = time.monotonic()
            asyncio.run(load(address, total))
            loaded_s = time.monotonic() - started
            segments, companion_wait_s = wait_for_companions(root / "data" / "objects")
            print(
                f"# loaded {total:,} events in {loaded_s:.1f} s; {segments} segments, every "
                f"companion written {companion_wait_s:.1f} s after the last commit"
            )
            parquet = root / "same-rows.parquet"
            write_parquet(parquet, total)
            ours = queries(total, TOPIC)
            theirs = queries(total, "bench")
            client = httpx.Client(base_url=base)
            for name, sql in ours.items():
                cpu_before = cpu_seconds(proc.pid)
                elapsed, answer = run_sql(client, sql)
                server_cpu = (cpu_seconds(proc.pid) - cpu_before) / REPEATS
                duck_s, duck_rows = run_duckdb(parquet, theirs[name])
                if name != "key lookup" and _rounded(answer["rows"]) != _rounded(duck_rows):
                    raise RuntimeError(f"{name}: {answer['rows']} != DuckDB's {duck_rows}")
                if name == "key lookup" and len(answer["rows"]) != len(duck_rows):
                    raise RuntimeError(f"{name}: {answer['rows']} != DuckDB's {duck_rows}")
                stats = answer.get("stats", {})
                report(
                    f"SQL {name}, {total:,} JSON events, 6 partitions",
                    covered_rows(name, total) / elapsed,
                    peak_rss_mb(),
                    latency_ms=round(elapsed * 1000, 1),
                    server_elapsed_ms=round(answer["elapsed_ms"], 1),
                    duckdb_parquet_ms=round(duck_s * 1000, 1),
                    ratio_to_duckdb=round(elapsed / duck_s, 2),
                    segments_read=stats.get("segments_read"),
                    segments_skipped=stats.get("segments_skipped"),
                    server_cpu_s=round(server_cpu, 3),
                    server_rss_mb=round(server_rss_mb(proc), 1),
                    load_average=round(os.getloadavg()[0], 2),
                )
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def _rounded(rows) -> list[list]:
    """Rows with floats rounded (sums in another order differ in the last digits)."""
    return [[round(v, 3) if isinstance(v, float) else v for v in row] for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None, help="events to load (10 million)")
    args = parser.parse_args()
    run(print_report, args.events)


if __name__ == "__main__":
    main()
