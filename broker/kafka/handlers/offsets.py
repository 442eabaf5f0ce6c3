"""Not served yet."""

from __future__ import annotations

HANDLERS: dict = {}
