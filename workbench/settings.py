"""Server settings: one frozen model, filled from defaults < TOML file < env < flags.

Env variables are ``STREAMHOUSE_<FIELD>`` (for example ``STREAMHOUSE_HTTP_PORT=8081``); the TOML
file uses the field names as keys. Everything is passed in explicitly; nothing reads globals later.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "STREAMHOUSE_"
_BYTE_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}
_BYTE_UNITS |= {"KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4}


class SettingsError(ValueError):
    """Settings could not be loaded; the message says which source and which key."""


class ServerSettings(BaseModel):
    """Everything `streamhouse serve` needs to start (DESIGN.md, External contracts)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Path("data")
    metadata_url: str = ""  # default: sqlite under data_dir
    object_store: str = ""  # default: files under data_dir/objects
    host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    grpc_port: int = Field(50051, ge=0, le=65535)
    kafka_port: int = Field(9092, ge=0, le=65535)
    advertised_host: str = ""
    # Kafka listener: auto-create unknown topics on Metadata/Produce (Kafka's default) with this
    # many partitions; frames above kafka_max_request_bytes close the connection; SASL/PLAIN is
    # on when kafka_sasl_users maps at least one user to a password (TOML table or JSON in env).
    kafka_auto_create_topics: bool = True
    kafka_default_partitions: int = Field(1, ge=1, le=10_000)
    kafka_max_request_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    kafka_sasl_users: dict[str, str] = Field(default_factory=dict)
    kafka_connections_max_idle_ms: int = Field(600_000, ge=100)
    agent_id: str = ""
    wal_sync: Literal["always", "interval", "never"] = "interval"
    wal_sync_interval_ms: int = Field(100, gt=0)
    wal_max_bytes: int = Field(1024**3, gt=0)
    cache_max_bytes: int = Field(1024**3, gt=0)
    lease_ttl_ms: int = Field(10_000, gt=0)
    # What acks=all waits for: "wal" (fsynced in this agent's WAL), "object-store" (the segment
    # is committed; survives the loss of this machine), or "auto": object-store when the metadata
    # is PostgreSQL (several agents may share it), wal otherwise.
    acks_all: Literal["auto", "wal", "object-store"] = "auto"
    shutdown_timeout_s: float = Field(30.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Point-in-time SQL (docs/sql.md): one query's memory budget in bytes ("512MB", "1GiB" or a
    # number; DuckDB gets 3/4, the scans' decoded segments 1/4), its timeout, the rows of a
    # bounded answer, and the queries running at once (more are refused with 429).
    sql_memory_limit: int = Field(1024**3, ge=16 * 1024**2)
    sql_timeout_s: float = Field(30.0, gt=0)
    sql_row_limit: int = Field(10_000, ge=1, le=1_000_000)
    sql_max_concurrent: int = Field(8, ge=1, le=1024)

    @field_validator("kafka_sasl_users", mode="before")
    @classmethod
    def _users_from_json(cls, value: Any) -> Any:
        """Env variables and flags carry the user table as a JSON object."""
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"expected a JSON object of user: password ({exc})") from exc
        return value

    @field_validator("sql_memory_limit", mode="before")
    @classmethod
    def _bytes_from_text(cls, value: Any) -> Any:
        """Sizes as people write them: 512MB, 1GiB, 1.5GB, or a plain number of bytes."""
        if not isinstance(value, str):
            return value
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", value)
        unit = match and _BYTE_UNITS.get(match.group(2).upper())
        if not match or unit is None:
            raise ValueError("expected a size such as 512MB, 1GiB or a number of bytes")
        return int(float(match.group(1)) * unit)


def load_settings(
    flags: Mapping[str, Any],
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerSettings:
    """Merges the sources in order of precedence and validates the result once."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            values.update(tomllib.loads(config_file.read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"config file {config_file}: {exc}") from exc
    env = os.environ if environ is None else environ
    for name in ServerSettings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in env:
            values[name] = env[key]
    values.update({k: v for k, v in flags.items() if v is not None})
    try:
        return ServerSettings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}={err.get('input')!r}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from exc
