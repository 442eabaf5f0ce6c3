"""Declared streams and tables through the query service over a real log (SQLite + files).

Records are written as the bytes each format's producers write (JSON text, comma-separated
text, big-endian numbers, Confluent-framed and bare Avro); every test SELECTs the typed columns
and compares them with the values those bytes were made from.
"""

from __future__ import annotations

import io
import json
import struct
from datetime import UTC, datetime

import fastavro
import pytest
from streamhouse.broker.log import LogManager
from streamhouse.broker.records import build_batch
from streamhouse.broker.service import BrokerService
from streamhouse.engine.query import QueryService
from streamhouse.sql import SqlError

from .conftest import T0

T0_ISO = "2023-11-14T22:13:20.000000Z"  # T0 as a TIMESTAMP column prints
T0_MS = "2023-11-14T22:13:20.000Z"  # T0 as ROWTIME (millisecond precision) prints


async def put(manager: LogManager, topic: str, keys, values, partition=0, timestamps=None):
    plog = await manager.partition(topic, partition)
    stamps = timestamps or [T0 + i for i in range(len(values))]
    await plog.append([build_batch(values, keys=keys, timestamps=stamps)])


@pytest.fixture
async def service(manager: LogManager) -> QueryService:
    for name, partitions in (("orders", 2), ("numbers", 1), ("csv", 1), ("avro", 1)):
        await manager.create_topic(name, partitions)
    orders = [
        {"ID": 1, "amount": 2.5, "Status": "new", "ts": T0 + 500, "tags": ["a"], "at": T0},
        {"id": 2, "AMOUNT": "not a number", "status": "paid", "ts": T0 + 600, "tags": []},
        {"id": 3, "amount": 7, "status": "sent", "ts": None, "at": "2024-01-02T03:04:05"},
    ]
    values = [json.dumps(o).encode() for o in orders] + [b"{not json", b"[1, 2]"]
    await put(manager, "orders", [b"c1", b"c2", b"c1", b"c9", None], values)
    await put(manager, "orders", [b"c2"], [b'{"id": 9, "amount": 1}'], partition=1)
    await put(
        manager,
        "numbers",
        [struct.pack(">q", -7), struct.pack(">q", 2**40), b"\x01"],
        [struct.pack(">d", 1.25), struct.pack(">d", -3.0), b"short"],
    )
    await put(manager, "csv", [b"1", b"2", b"x"], [b"ann,30,true", b"bob,,false", b"a,b,c,d"])
    return QueryService(BrokerService(manager))


async def rows(service: QueryService, sql: str) -> list[list]:
    return (await service.execute(sql)).rows


ORDERS = (
    "CREATE STREAM Orders (id INT, amount DOUBLE, status VARCHAR, ts BIGINT, tags VARCHAR[], "
    "at TIMESTAMP, customer VARCHAR KEY) WITH (kafka_topic='orders', value_format='JSON')"
)


async def test_json_stream_reads_typed_columns_matching_fields_ignoring_case(service) -> None:
    assert (await rows(service, ORDERS)) == [["Stream created", "Orders", "orders"]]
    result = await service.execute(
        "SELECT customer, id, amount, status, tags, at FROM orders WHERE ROWPARTITION = 0 "
        "ORDER BY ROWOFFSET"
    )
    assert [c["type"] for c in result.columns] == [
        "VARCHAR", "INTEGER", "DOUBLE", "VARCHAR", "VARCHAR[]", "TIMESTAMP",
    ]  # fmt: skip
    assert result.rows == [
        ["c1", 1, 2.5, "new", ["a"], T0_ISO],
        ["c2", 2, None, "paid", [], None],  # a field that does not cast is NULL
        ["c1", 3, 7.0, "sent", None, "2024-01-02T03:04:05.000000Z"],
        ["c9", None, None, None, None, None],  # not JSON: NULL columns, the query goes on
        [None, None, None, None, None, None],  # JSON, but not an object
    ]


async def test_pseudo_columns_and_the_timestamp_column(service) -> None:
    await service.execute(ORDERS)
    assert await rows(
        service, "SELECT ROWPARTITION, ROWOFFSET, ROWTIME FROM orders ORDER BY 1, 2 LIMIT 2"
    ) == [[0, 0, T0_MS], [0, 1, "2023-11-14T22:13:20.001Z"]]
    await service.execute(
        ORDERS.replace("Orders", "timed").replace("'JSON'", "'JSON', timestamp='TS'")
    )
    assert await rows(
        service, "SELECT id, ROWTIME FROM timed WHERE ROWPARTITION = 0 AND id < 4 ORDER BY id"
    ) == [[1, "2023-11-14T22:13:20.500Z"], [2, "2023-11-14T22:13:20.600Z"], [3, None]]
    ms = await rows(service, "SELECT epoch_ms(ROWTIME) FROM timed WHERE id = 2")
    assert ms == [[T0 + 600]]


async def test_rowtime_and_key_push_into_the_scan_shown_by_explain(service) -> None:
    await service.execute(ORDERS)
    explained = await rows(
        service,
        f"EXPLAIN SELECT * FROM orders WHERE ROWTIME >= {T0 + 1} AND customer = 'c1' "
        "AND ROWPARTITION = 0 AND ROWOFFSET < 3",
    )
    pushdown = " ".join(str(cell) for row in explained for cell in row)
    assert "partitions [0]" in pushdown and "offsets [-inf, 3)" in pushdown
    assert "keys ['c1']" in pushdown
    # A TIMESTAMP column ROWTIME is a value: it must not prune by the record timestamp.
    await service.execute(
        ORDERS.replace("Orders", "timed").replace("'JSON'", "'JSON', timestamp='ts'")
    )
    explained = await rows(service, "EXPLAIN SELECT * FROM timed WHERE ROWTIME > '2030-01-01'")
    assert "timestamps" not in " ".join(str(c) for row in explained for c in row)
    assert await rows(service, "SELECT id FROM orders WHERE customer = 'c1' ORDER BY id") == [
        [1],
        [3],
    ]


async def test_kafka_format_big_endian_key_and_value(service) -> None:
    await service.execute(
        "CREATE STREAM nums (k BIGINT KEY, v DOUBLE) WITH (kafka_topic='numbers', "
        "value_format='KAFKA')"
    )
    assert await rows(service, "SELECT k, v FROM nums ORDER BY ROWOFFSET") == [
        [-7, 1.25],
        [2**40, -3.0],
        [None, None],  # wrong widths decode to NULL
    ]


async def test_delimited_table_with_a_delimited_key(service) -> None:
    await service.execute(
        "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR, age INT, ok BOOLEAN) "
        "WITH (kafka_topic='csv', value_format='DELIMITED', key_format='DELIMITED')"
    )
    assert await rows(service, "SELECT * EXCLUDE (ROWTIME) FROM people") == [
        [1, "ann", 30, True, 0, 0],
        [2, "bob", None, False, 0, 1],
        [None, None, None, None, 0, 2],  # four fields for three columns: NULLs
    ]


def avro_body(schema, record) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    return buffer.getvalue()


async def test_avro_confluent_framed_and_bare(service, manager: LogManager) -> None:
    # What a producer with its own (ksqlDB-like) schema writes: names differ, order and types
    # are the declared ones.
    schema = {
        "type": "record",
        "name": "Payment",
        "fields": [
            {"name": "amount", "type": ["null", "double"], "default": None},
            {"name": "at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
            {"name": "Tags", "type": ["null", {"type": "array", "items": ["null", "string"]}]},
        ],
    }
    moment = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    framed = b"\x00\x00\x00\x00\x2a" + avro_body(
        schema, {"amount": 9.5, "at": moment, "Tags": ["x"]}
    )
    bare = avro_body(schema, {"amount": None, "at": None, "Tags": None})
    await put(manager, "avro", [b"p1", b"p2", b"p3"], [framed, bare, b"\x02garbage"])
    await service.execute(
        "CREATE STREAM pay (id STRING KEY, amount DOUBLE, at TIMESTAMP, tags ARRAY<STRING>) "
        "WITH (kafka_topic='avro', value_format='avro')"
    )
    assert await rows(service, "SELECT id, amount, at, tags FROM pay ORDER BY id") == [
        ["p1", 9.5, "2024-05-06T07:08:09.000000Z", ["x"]],
        ["p2", None, None, None],
        ["p3", None, None, None],
    ]


async def test_show_describe_drop_and_the_raw_topic(service) -> None:
    await service.execute(ORDERS)
    await service.execute(
        "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR) "
        "WITH (kafka_topic='csv', value_format='DELIMITED')"
    )
    assert await rows(service, "SHOW STREAMS") == [["Orders", "orders", "KAFKA", "JSON"]]
    assert await rows(service, "SHOW TABLES") == [["people", "csv", "KAFKA", "DELIMITED"]]
    assert await rows(service, "SHOW QUERIES") == []
    described = await rows(service, "DESCRIBE orders")
    assert ["column", "customer", "VARCHAR", "KEY"] in described
    assert ["column", "ROWTIME", "TIMESTAMP", "pseudo"] in described
    assert ["source", "topic", None, "orders"] in described
    partitions = [r for r in described if r[0] == "partition"]
    assert partitions[0][1:3] == ["0", None] and "record_count=5" in partitions[0][3]
    # The topic stays reachable with its record columns.
    assert await rows(service, 'SELECT count(*), min(key) FROM "topic:orders"') == [[6, "c1"]]
    dropped = await rows(service, "DROP STREAM ORDERS")
    assert dropped[0][1:] == ["Orders", "orders"]
    assert await rows(service, "SELECT count(*) FROM orders WHERE key = 'c1'") == [[2]]
    assert await rows(service, "DROP STREAM IF EXISTS orders") == [
        ["Nothing to drop", "orders", None]
    ]


async def test_describe_extended_topic_infers_the_json_fields(service) -> None:
    described = await rows(service, "DESCRIBE orders EXTENDED")
    inferred = {r[1]: r[2] for r in described if r[0] == "inferred"}
    assert inferred["ID"] == "BIGINT" and inferred["status"] == "VARCHAR"
    assert inferred["tags"] == "VARCHAR[]"
    configs = {r[1]: r[3] for r in described if r[0] == "config"}
    assert "retention.ms" in configs
    assert await rows(service, "DESCRIBE csv EXTENDED") == [
        r for r in await rows(service, "DESCRIBE csv EXTENDED") if r[0] != "inferred"
    ] + [["inferred", None, None, "no JSON objects among 3 sampled values"]]


async def test_if_not_exists_and_or_replace(service) -> None:
    await service.execute(ORDERS)
    kept = await rows(service, ORDERS.replace("CREATE STREAM", "CREATE STREAM IF NOT EXISTS"))
    assert kept[0][0] == "Stream 'Orders' already exists; kept as it was"
    await service.execute(
        "CREATE OR REPLACE STREAM orders (id INT) WITH (kafka_topic='orders', value_format='JSON')"
    )
    assert await rows(service, "SELECT id FROM orders WHERE ROWPARTITION = 1") == [[9]]
    with pytest.raises(SqlError, match="Cannot replace stream 'orders' with a table"):
        await service.execute(
            "CREATE OR REPLACE TABLE orders (id INT PRIMARY KEY) "
            "WITH (kafka_topic='orders', value_format='JSON')"
        )


async def test_partitions_creates_a_missing_topic(service, manager: LogManager) -> None:
    await service.execute(
        "CREATE STREAM fresh (v VARCHAR) WITH (kafka_topic='fresh', value_format='KAFKA', "
        "partitions=4)"
    )
    assert (await manager.metadata.get_topic("fresh")).partitions == 4
    assert await rows(service, "SELECT count(*) FROM fresh") == [[0]]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("CREATE STREAM s (a INT) WITH (kafka_topic='orders')", 'property "VALUE_FORMAT"'),
        ("CREATE STREAM s (a INT) WITH (value_format='JSON')", 'property "KAFKA_TOPIC"'),
        ("CREATE STREAM s (a INT) WITH (kafka_topic='orders', value_format='XML')",
         "Unknown value_format 'XML'. Supported: JSON, DELIMITED, KAFKA, AVRO."),
        ("CREATE STREAM s (a INT) WITH (kafka_topic='ordrs', value_format='JSON')",
         "Topic 'ordrs' does not exist. Did you mean 'orders'?"),
        ("CREATE STREAM s (a INT, b INT) WITH (kafka_topic='orders', value_format='KAFKA')",
         "The 'KAFKA' format only supports a single field"),
        ("CREATE TABLE t (a INT) WITH (kafka_topic='orders', value_format='JSON')",
         "Tables require a PRIMARY KEY"),
        ("CREATE STREAM s (a INT PRIMARY KEY) WITH (kafka_topic='orders', value_format='JSON')",
         "please use 'KEY' for streams"),
        ("CREATE STREAM s (a VARCHAR) WITH (kafka_topic='orders', value_format='JSON', "
         "timestamp='a')", "should be BIGINT (epoch milliseconds) or TIMESTAMP"),
        ("CREATE STREAM s (a BIGINT) WITH (kafka_topic='orders', value_format='JSON', "
         "timestamp='b')", "does not exist in the schema"),
        ("CREATE STREAM s (a BIGINT) WITH (kafka_topic='orders', value_format='JSON', "
         "timestamp='a', timestamp_format='yyyy')", "TIMESTAMP_FORMAT is not supported"),
        ("CREATE STREAM s (a INT) WITH (kafka_topic='orders', value_fromat='JSON')",
         "Unknown property VALUE_FROMAT. Did you mean 'value_format'"),
        ("CREATE STREAM s (rowtime INT) WITH (kafka_topic='orders', value_format='JSON')",
         "reserved column name"),
        ("CREATE STREAM s (a INT, A INT) WITH (kafka_topic='orders', value_format='JSON')",
         "Duplicate column name"),
        ("CREATE STREAM s (a NOSUCHTYPE) WITH (kafka_topic='orders', value_format='JSON')",
         "Unknown column type"),
        ("CREATE STREAM s WITH (kafka_topic='orders', value_format='JSON')",
         "needs its columns"),
        ("CREATE STREAM s (k DOUBLE KEY, a INT) WITH (kafka_topic='orders', value_format="
         "'AVRO', key_format='AVRO')", "Unknown key_format 'AVRO'"),
        ("CREATE STREAM s (a STRUCT(x INT)) WITH (kafka_topic='orders', value_format="
         "'DELIMITED')", "'DELIMITED' format does not support"),
        ("CREATE STREAM \"a:b\" (a INT) WITH (kafka_topic='orders', value_format='JSON')",
         "may not contain ':'"),
        (f"CREATE STREAM \"{'x' * 256}\" (a INT) WITH (kafka_topic='orders', "
         "value_format='JSON')", "1 to 255 characters"),
        ("CREATE STREAM s (a INT) WITH (kafka_topic='orders', value_format='JSON', "
         "partitions=5)", "already exists with 2 partitions"),
        ("DROP TABLE nothing", "Table 'nothing' does not exist."),
        ("SELECT * FROM \"topic:nope\"", "Unknown topic, stream or table"),
    ],
)  # fmt: skip
async def test_bad_declarations_get_clear_errors(service, sql: str, message: str) -> None:
    with pytest.raises(SqlError) as caught:
        await service.execute(sql)
    assert message in caught.value.message
    assert await rows(service, "SHOW STREAMS") == []


async def test_duplicate_names_and_kind_mismatches(service) -> None:
    await service.execute(ORDERS)
    with pytest.raises(SqlError, match="Cannot add table 'ORDERS': a stream named 'Orders'"):
        await service.execute(
            "CREATE TABLE ORDERS (id INT PRIMARY KEY) WITH (kafka_topic='csv', value_format='JSON')"
        )
    with pytest.raises(SqlError, match="Incompatible data source type is STREAM"):
        await service.execute("DROP TABLE orders")


async def test_hostile_names_and_unknown_columns(service) -> None:
    name = "we\"ird 'name'"
    await service.execute(
        f'CREATE STREAM "{name.replace(chr(34), chr(34) * 2)}" ("a""b" INT, "c\'d" VARCHAR) '
        "WITH (kafka_topic='orders', value_format='JSON')"
    )
    assert [r[0] for r in await rows(service, "SHOW STREAMS")] == [name]
    result = await service.execute(f'SELECT * FROM "{name.replace(chr(34), chr(34) * 2)}" LIMIT 1')
    assert [c["name"] for c in result.columns][:2] == ['a"b', "c'd"]
    await service.execute(ORDERS)
    with pytest.raises(SqlError, match=r"Unknown column 'amont'.*'amount'"):
        await service.execute("SELECT amont FROM orders")


async def test_a_declaration_whose_topic_was_deleted_is_an_error(service, manager) -> None:
    await service.execute(ORDERS)
    await BrokerService(manager).delete_topic("orders")
    with pytest.raises(SqlError, match="reads topic 'orders', which does not exist"):
        await service.execute("SELECT * FROM orders")
