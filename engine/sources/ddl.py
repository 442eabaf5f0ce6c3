"""CREATE/DROP STREAM|TABLE and SHOW STREAMS|TABLES|QUERIES against the metadata store.

Declarations live in the metadata store, so every agent of a cluster sees them at once and they
survive restarts. Creating one checks its topic first (and creates it when PARTITIONS=n is
given, as ksqlDB does); dropping one never touches the topic.
"""

from __future__ import annotations

from streamhouse.broker.metadata import MetadataError, SourceExistsError, UnknownSourceError
from streamhouse.engine.query.results import SqlResult, from_rows
from streamhouse.sql import SqlError
from streamhouse.sql.errors import did_you_mean
from streamhouse.sql.statements import CreateSourceStatement, DropStatement

from .declaration import declare, topic_property, wanted_partitions

MESSAGE_COLUMNS = [("message", "VARCHAR"), ("name", "VARCHAR"), ("topic", "VARCHAR")]
SHOW_SOURCE_COLUMNS = [
    ("name", "VARCHAR"),
    ("topic", "VARCHAR"),
    ("key_format", "VARCHAR"),
    ("value_format", "VARCHAR"),
]
SHOW_QUERY_COLUMNS = [
    ("query_id", "VARCHAR"),
    ("status", "VARCHAR"),
    ("sink", "VARCHAR"),
    ("sql", "VARCHAR"),
]


async def _ensure_topic(broker, statement: CreateSourceStatement, topic: str) -> None:
    partitions = wanted_partitions(statement)
    topics = {t.name: t for t in await broker.list_topics()}
    existing = topics.get(topic)
    if existing is None and partitions is None:
        raise SqlError(
            f"Topic {topic!r} does not exist." + did_you_mean(topic, topics)
            + " Give PARTITIONS=n in WITH (...) to create it."
        )  # fmt: skip
    if existing is None:
        try:
            await broker.create_topic(topic, partitions, if_not_exists=True)
        except MetadataError as exc:
            raise SqlError(f"Cannot create topic {topic!r}: {exc}") from None
    elif partitions is not None and partitions != existing.partitions:
        raise SqlError(
            f"A Kafka topic with the name {topic!r} already exists with {existing.partitions} "
            f"partitions, different from PARTITIONS={partitions}"
        )


async def create_source(broker, statement: CreateSourceStatement) -> SqlResult:
    """Checks, then stores, a declaration; IF NOT EXISTS and OR REPLACE as in ksqlDB."""
    topic = topic_property(statement)
    source = declare(statement, topic)
    store = broker.metadata
    kind = statement.kind
    if statement.or_replace:
        try:
            current = await store.get_source(statement.name)
        except UnknownSourceError:
            current = None
        if current is not None and current.kind != kind:
            raise SqlError(
                f"Cannot replace {current.kind} {current.name!r} with a {kind}: drop it first"
            )
    if statement.if_not_exists:
        try:
            current = await store.get_source(statement.name)
        except UnknownSourceError:
            current = None
        if current is not None:
            message = f"{current.kind.capitalize()} {current.name!r} already exists; kept as it was"
            return from_rows(MESSAGE_COLUMNS, [[message, current.name, current.topic]])
    await _ensure_topic(broker, statement, topic)
    try:
        stored = await store.create_source(
            source, if_not_exists=statement.if_not_exists, or_replace=statement.or_replace
        )
    except SourceExistsError as exc:
        raise SqlError(f"Cannot add {kind} {statement.name!r}: {exc}") from None
    message = f"{kind.capitalize()} created"
    return from_rows(MESSAGE_COLUMNS, [[message, stored.name, stored.topic]])


async def drop_source(broker, statement: DropStatement) -> SqlResult:
    """Forgets a declaration; its topic and records stay."""
    store = broker.metadata
    try:
        current = await store.get_source(statement.name)
    except UnknownSourceError:
        if statement.if_exists:
            return from_rows(MESSAGE_COLUMNS, [["Nothing to drop", statement.name, None]])
        names = [s.name for s in await store.list_sources()]
        raise SqlError(
            f"{statement.kind.capitalize()} {statement.name!r} does not exist."
            + did_you_mean(statement.name, names)
        ) from None
    if current.kind != statement.kind:
        raise SqlError(
            f"Incompatible data source type is {current.kind.upper()}, but statement was "
            f"DROP {statement.kind.upper()}"
        )
    try:
        dropped = await store.delete_source(current.name)
    except UnknownSourceError:  # dropped meanwhile by another agent
        if statement.if_exists:
            return from_rows(MESSAGE_COLUMNS, [["Nothing to drop", statement.name, None]])
        raise SqlError(
            f"{statement.kind.capitalize()} {statement.name!r} does not exist."
        ) from None
    message = f"Source {dropped.name!r} (topic: {dropped.topic}) was dropped."
    return from_rows(MESSAGE_COLUMNS, [[message, dropped.name, dropped.topic]])


async def show_sources(broker, kind: str) -> SqlResult:
    """SHOW STREAMS / SHOW TABLES (ksqlDB's columns); SHOW QUERIES is empty for now."""
    if kind == "queries":
        return from_rows(SHOW_QUERY_COLUMNS, [])
    wanted = "stream" if kind == "streams" else "table"
    rows = [
        [s.name, s.topic, s.properties.get("key_format"), s.properties.get("value_format")]
        for s in await broker.metadata.list_sources()
        if s.kind == wanted
    ]
    return from_rows(SHOW_SOURCE_COLUMNS, rows)
