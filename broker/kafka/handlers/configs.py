"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs over topic and broker configs.

Topic configs are ``TopicConfig`` under their Kafka names; a value equal to the built-in default
is reported as the default (we keep values, not which ones were set explicitly). Broker configs
are the listener's and the log's settings: they come from ``streamhouse serve`` flags and cannot
be altered over Kafka, which is said to the client in the error message.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.context import KafkaSettings, RequestContext
from streamhouse.broker.kafka.errors import ErrorCode, error_code, error_message
from streamhouse.broker.metadata import InvalidConfigError, TopicConfig
from streamhouse.broker.metadata.config import KAFKA_NAMES
from streamhouse.broker.service.broker import is_internal


class ResourceType(enum.IntEnum):
    TOPIC = 2
    BROKER = 4
    BROKER_LOGGER = 8


class ConfigType(enum.IntEnum):
    BOOLEAN = 1
    STRING = 2
    INT = 3
    LONG = 5
    LIST = 7


class ConfigSource(enum.IntEnum):
    TOPIC_CONFIG = 1
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5


class AlterOp(enum.IntEnum):
    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


class Refused(Exception):
    """A request the client got wrong; ``kafka_code`` is what ``error_code`` answers."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.kafka_code = int(code)


@dataclass(frozen=True)
class TopicKey:
    """How one topic config is typed and documented, and its broker-wide counterpart."""

    type: ConfigType
    broker_name: str | None
    doc: str


TOPIC_KEYS: dict[str, TopicKey] = {
    "cleanup.policy": TopicKey(
        ConfigType.LIST,
        "log.cleanup.policy",
        "delete, compact or both (stored and validated; compaction is not implemented yet).",
    ),
    "max.message.bytes": TopicKey(
        ConfigType.INT,
        "message.max.bytes",
        "The largest record batch a producer may send; larger ones get MESSAGE_TOO_LARGE.",
    ),
    "retention.bytes": TopicKey(
        ConfigType.LONG,
        "log.retention.bytes",
        "Per partition; the oldest segments are deleted while a partition is larger. -1: none.",
    ),
    "retention.ms": TopicKey(
        ConfigType.LONG,
        "log.retention.ms",
        "Segments whose newest record is older than this are deleted; -1 keeps them forever.",
    ),
    "segment.bytes": TopicKey(
        ConfigType.INT,
        "log.segment.bytes",
        "The open segment is sealed and uploaded once it holds this many bytes.",
    ),
    "segment.ms": TopicKey(
        ConfigType.LONG,
        "log.roll.ms",
        "The open segment is sealed and uploaded once it has been open this long.",
    ),
    "wal.sync": TopicKey(
        ConfigType.STRING,
        "wal.sync",
        "always, interval or never: overrides the server's WAL fsync policy for this topic.",
    ),
}
_LIST_KEYS = frozenset(name for name, key in TOPIC_KEYS.items() if key.type is ConfigType.LIST)
_DEFAULTS = TopicConfig().to_kafka_dict()
BROKER_CONFIGS_ARE_STATIC = "broker configs are static: set them with streamhouse serve flags"


def check_topic_keys(names: Iterable[str]) -> None:
    """Only Kafka names are accepted on the Kafka API; the error lists the ones we serve."""
    for name in names:
        if name not in KAFKA_NAMES:
            raise Refused(
                ErrorCode.INVALID_CONFIG,
                f"unknown topic config {name!r}; supported: {', '.join(sorted(KAFKA_NAMES))}",
            )


def topic_config_values(config: TopicConfig, server_wal: str) -> dict[str, tuple[str, bool]]:
    """Kafka name -> (value, is_default) for every topic config, in name order.

    An unset ``wal.sync`` shows the server's policy, which is what the topic follows.
    """
    explicit = config.to_kafka_dict()
    out: dict[str, tuple[str, bool]] = {}
    for name in sorted(KAFKA_NAMES):
        if name in explicit:
            value = explicit[name]
            out[name] = (value, value == _DEFAULTS.get(name))
        else:
            out[name] = (server_wal if name == "wal.sync" else "", True)
    return out


def wal_default(ctx: RequestContext) -> str:
    return str(ctx.cluster.manager.config.wal_sync_policy.value)


def _source(is_default: bool) -> ConfigSource:
    return ConfigSource.DEFAULT_CONFIG if is_default else ConfigSource.TOPIC_CONFIG


def created_topic_configs(ctx: RequestContext, config: TopicConfig) -> list[dict[str, Any]]:
    """The ``configs`` of a CreateTopics v5+ result."""
    return [
        {
            "name": name,
            "value": value,
            "read_only": False,
            "config_source": _source(is_default),
            "is_sensitive": False,
        }
        for name, (value, is_default) in topic_config_values(config, wal_default(ctx)).items()
    ]


def _entry(
    name: str,
    value: str | None,
    source: ConfigSource,
    config_type: ConfigType,
    doc: str,
    *,
    read_only: bool,
    synonyms: list[dict[str, Any]],
    include_synonyms: bool,
    include_documentation: bool,
) -> dict[str, Any]:
    return {
        "name": name,
        "value": value,
        "read_only": read_only,
        "is_default": source is ConfigSource.DEFAULT_CONFIG,
        "config_source": source,
        "is_sensitive": False,
        "synonyms": synonyms if include_synonyms else [],
        "config_type": config_type,
        "documentation": doc if include_documentation else None,
    }


def _describe_topic_configs(
    ctx: RequestContext, config: TopicConfig, request: Mapping[str, Any]
) -> list[dict[str, Any]]:
    entries = []
    for name, (value, is_default) in topic_config_values(config, wal_default(ctx)).items():
        key = TOPIC_KEYS.get(name, TopicKey(ConfigType.STRING, None, ""))
        source = _source(is_default)
        synonyms = []
        if not is_default:
            synonyms.append({"name": name, "value": value, "source": ConfigSource.TOPIC_CONFIG})
        if key.broker_name is not None:
            default = wal_default(ctx) if name == "wal.sync" else _DEFAULTS.get(name)
            synonyms.append(
                {"name": key.broker_name, "value": default, "source": ConfigSource.DEFAULT_CONFIG}
            )
        entries.append(
            _entry(
                name,
                value,
                source,
                key.type,
                key.doc,
                read_only=False,
                synonyms=synonyms,
                include_synonyms=request["include_synonyms"],
                include_documentation=request["include_documentation"],
            )
        )
    return entries


def broker_config_values(
    ctx: RequestContext,
) -> list[tuple[str, str, bool, ConfigType, str]]:
    """(name, value, is_default, type, doc) of the broker settings a Kafka client may read."""
    settings = ctx.cluster.settings
    base = KafkaSettings()
    sasl = bool(settings.sasl_users)
    protocol = "SASL_PLAINTEXT" if sasl else "PLAINTEXT"
    topic = _DEFAULTS
    return [
        ("broker.id", str(ctx.cluster.node_id), False, ConfigType.INT,
         "This agent's Kafka node id, derived from its agent id."),
        ("advertised.listeners", f"{protocol}://{settings.advertised_address}", False,
         ConfigType.LIST, "The address Kafka clients are told to dial."),
        ("auto.create.topics.enable", str(settings.auto_create_topics).lower(),
         settings.auto_create_topics == base.auto_create_topics, ConfigType.BOOLEAN,
         "Metadata and Produce create unknown topics (--kafka-auto-create-topics)."),
        ("num.partitions", str(settings.default_partitions),
         settings.default_partitions == base.default_partitions, ConfigType.INT,
         "Partitions of an auto-created topic (--kafka-default-partitions)."),
        ("socket.request.max.bytes", str(settings.max_request_bytes),
         settings.max_request_bytes == base.max_request_bytes, ConfigType.INT,
         "Larger requests close the connection (--kafka-max-request-bytes)."),
        ("sasl.enabled.mechanisms", "PLAIN" if sasl else "", not sasl, ConfigType.LIST,
         "SASL/PLAIN is on when --kafka-sasl-users names at least one user."),
        ("message.max.bytes", topic["max.message.bytes"], True, ConfigType.INT,
         "Default max.message.bytes of new topics."),
        ("log.retention.ms", topic["retention.ms"], True, ConfigType.LONG,
         "Default retention.ms of new topics."),
        ("log.retention.bytes", topic["retention.bytes"], True, ConfigType.LONG,
         "Default retention.bytes of new topics."),
        ("log.segment.bytes", topic["segment.bytes"], True, ConfigType.INT,
         "Default segment.bytes of new topics."),
        ("log.roll.ms", topic["segment.ms"], True, ConfigType.LONG,
         "Default segment.ms of new topics."),
        ("log.cleanup.policy", topic["cleanup.policy"], True, ConfigType.LIST,
         "Default cleanup.policy of new topics."),
        ("wal.sync", wal_default(ctx), False, ConfigType.STRING,
         "The server's WAL fsync policy (--wal-sync); topics may override it."),
    ]  # fmt: skip


def _describe_broker_configs(
    ctx: RequestContext, request: Mapping[str, Any]
) -> list[dict[str, Any]]:
    entries = []
    for name, value, is_default, config_type, doc in broker_config_values(ctx):
        source = ConfigSource.DEFAULT_CONFIG if is_default else ConfigSource.STATIC_BROKER_CONFIG
        entries.append(
            _entry(
                name,
                value,
                source,
                config_type,
                doc,
                read_only=True,
                synonyms=[{"name": name, "value": value, "source": source}],
                include_synonyms=request["include_synonyms"],
                include_documentation=request["include_documentation"],
            )
        )
    return entries


def _check_broker_name(ctx: RequestContext, resource_name: str) -> None:
    if resource_name not in ("", str(ctx.cluster.node_id)):
        raise Refused(
            ErrorCode.INVALID_REQUEST,
            f"this is broker {ctx.cluster.node_id}; ask broker {resource_name!r} for its configs",
        )


async def describe_configs(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    results = []
    for resource in request["resources"]:
        kind, name = resource["resource_type"], resource["resource_name"]
        result: dict[str, Any] = {"resource_type": kind, "resource_name": name, "configs": []}
        try:
            if kind == ResourceType.TOPIC:
                topic = await ctx.broker.metadata.get_topic(name)
                configs = _describe_topic_configs(ctx, topic.config, request)
            elif kind == ResourceType.BROKER:
                _check_broker_name(ctx, name)
                configs = _describe_broker_configs(ctx, request)
            else:
                raise Refused(
                    ErrorCode.INVALID_REQUEST,
                    f"resource type {kind} is not served; describe topics (2) or brokers (4)",
                )
            keys = resource["configuration_keys"]
            if keys is not None:
                wanted = set(keys)
                configs = [c for c in configs if c["name"] in wanted]
            result.update(error_code=0, error_message=None, configs=configs)
        except Exception as exc:
            result.update(error_code=error_code(exc), error_message=error_message(exc))
        results.append(result)
    return {"throttle_time_ms": 0, "results": results}


def _topic_target(ctx: RequestContext, kind: int, name: str) -> None:
    """Refuses the resources whose configs cannot be altered, with the reason."""
    if kind == ResourceType.BROKER:
        _check_broker_name(ctx, name)
        raise Refused(ErrorCode.INVALID_REQUEST, BROKER_CONFIGS_ARE_STATIC)
    if kind != ResourceType.TOPIC:
        raise Refused(
            ErrorCode.INVALID_REQUEST, f"resource type {kind} is not served; alter topics (2)"
        )
    if is_internal(name):
        raise Refused(ErrorCode.INVALID_REQUEST, f"internal topic {name!r} cannot be altered")


def _unique_names(configs: Iterable[Mapping[str, Any]]) -> list[str]:
    names = [c["name"] for c in configs]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise Refused(ErrorCode.INVALID_REQUEST, f"config {name!r} is named twice")
        seen.add(name)
    return names


async def _apply(
    ctx: RequestContext, name: str, changes: dict[str, str | None], validate_only: bool
) -> None:
    topic = await ctx.broker.metadata.get_topic(name)
    topic.config.with_changes(changes)  # raises before anything is stored
    if not validate_only:
        set_ = {k: v for k, v in changes.items() if v is not None}
        reset = [k for k, v in changes.items() if v is None]
        await ctx.broker.update_topic_config(name, set_, reset)


async def alter_configs(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    """Replaces a topic's whole config: keys the request leaves out go back to defaults."""
    responses = []
    for resource in request["resources"]:
        kind, name = resource["resource_type"], resource["resource_name"]
        try:
            _topic_target(ctx, kind, name)
            names = _unique_names(resource["configs"])
            check_topic_keys(names)
            changes: dict[str, str | None] = dict.fromkeys(KAFKA_NAMES)
            changes.update({c["name"]: c["value"] for c in resource["configs"]})
            await _apply(ctx, name, changes, request["validate_only"])
            exc: Exception | None = None
        except Exception as caught:
            exc = caught
        responses.append(_alter_result(kind, name, exc))
    return {"throttle_time_ms": 0, "responses": responses}


def _list_change(current: str, op: int, value: str | None, key: str) -> str:
    """APPEND/SUBTRACT items of a comma-separated list value."""
    items = [item for item in current.split(",") if item]
    given = [item.strip() for item in (value or "").split(",") if item.strip()]
    if op == AlterOp.APPEND:
        items += [item for item in given if item not in items]
    else:
        items = [item for item in items if item not in given]
    if not items:
        raise InvalidConfigError(f"config {key} cannot be empty")
    return ",".join(items)


async def incremental_alter_configs(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    """SET/DELETE/APPEND/SUBTRACT per key; keys not named keep their values."""
    responses = []
    for resource in request["resources"]:
        kind, name = resource["resource_type"], resource["resource_name"]
        try:
            _topic_target(ctx, kind, name)
            check_topic_keys(_unique_names(resource["configs"]))
            current = (await ctx.broker.metadata.get_topic(name)).config.to_kafka_dict()
            changes: dict[str, str | None] = {}
            for config in resource["configs"]:
                key, op, value = config["name"], config["config_operation"], config["value"]
                if op == AlterOp.SET:
                    if value is None:
                        raise InvalidConfigError(f"config {key} cannot be set to null")
                    changes[key] = value
                elif op == AlterOp.DELETE:
                    changes[key] = None
                elif op in (AlterOp.APPEND, AlterOp.SUBTRACT):
                    if key not in _LIST_KEYS:
                        raise InvalidConfigError(
                            f"{AlterOp(op).name} is only for list configs "
                            f"({', '.join(sorted(_LIST_KEYS))}), not {key}"
                        )
                    changes[key] = _list_change(current.get(key, ""), op, value, key)
                else:
                    raise Refused(ErrorCode.INVALID_REQUEST, f"unknown config operation {op}")
            await _apply(ctx, name, changes, request["validate_only"])
            exc: Exception | None = None
        except Exception as caught:
            exc = caught
        responses.append(_alter_result(kind, name, exc))
    return {"throttle_time_ms": 0, "responses": responses}


def _alter_result(kind: int, name: str, exc: Exception | None) -> dict[str, Any]:
    return {
        "error_code": error_code(exc),
        "error_message": error_message(exc),
        "resource_type": kind,
        "resource_name": name,
    }


HANDLERS = {
    apis.DESCRIBE_CONFIGS: describe_configs,
    apis.ALTER_CONFIGS: alter_configs,
    apis.INCREMENTAL_ALTER_CONFIGS: incremental_alter_configs,
}
