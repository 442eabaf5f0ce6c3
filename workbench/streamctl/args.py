"""Parsing of the argument forms typer has no type for: ``k=v`` pairs and points in time.

Problems raise ``typer.BadParameter`` so they are usage errors (exit code 2), reported before
anything is sent to the server.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import typer


def parse_pairs(items: Iterable[str], option: str) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; the key must not be empty."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
        pairs[key] = value
    return pairs


def parse_timestamp(text: str) -> int:
    """Epoch milliseconds from digits, or from ISO-8601 (a time without a zone is UTC)."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        value = int(text)
        if value < 0:
            raise typer.BadParameter(f"timestamp {text} is negative", param_hint="--value")
        return value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither epoch milliseconds nor an ISO-8601 time "
            "(e.g. 2024-05-01T12:00:00Z)",
            param_hint="--value",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
