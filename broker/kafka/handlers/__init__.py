"""Request handlers by API key, one module per area; ApiVersions advertises exactly these."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from streamhouse.broker.kafka.context import RequestContext
from streamhouse.broker.kafka.handlers import (
    admin,
    cluster,
    configs,
    fetch,
    group_offsets,
    groups,
    offsets,
    produce,
    sasl,
)

Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[dict[str, Any] | None]]

HANDLERS: dict[int, Handler] = {}
for _module in (admin, cluster, configs, fetch, group_offsets, groups, offsets, produce, sasl):
    for _key, _handler in _module.HANDLERS.items():
        if _key in HANDLERS:
            raise RuntimeError(f"API key {_key} is handled twice")
        HANDLERS[_key] = _handler
