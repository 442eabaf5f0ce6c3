"""A server under SQL test and its oracle: DuckDB run directly over the rows it was sent."""

from __future__ import annotations

import httpx
import pyarrow as pa
from streamhouse.engine.duckdb_adapter import DuckDBSession
from streamhouse.engine.query.results import from_arrow

from ..conftest import ServerProcess

API = "/api/v1"


class OracleServer:
    """`sql` asks the server; `oracle` asks DuckDB over `tables`, registered as topics are."""

    def __init__(self, server: ServerProcess, tables: dict[str, pa.Table]) -> None:
        self.server = server
        self.tables = tables
        self.client = httpx.Client(base_url=server.http_url, timeout=60)

    def sql(self, statement: str) -> httpx.Response:
        return self.client.post(f"{API}/sql", json={"sql": statement})

    def oracle(self, statement: str) -> list[list]:
        with DuckDBSession() as session:
            for name, table in self.tables.items():
                session.register_topic(name, table)
            return from_arrow(session.execute(statement).table).rows
