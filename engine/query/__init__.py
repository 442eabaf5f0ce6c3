"""Point-in-time SQL: one statement in, one bounded result out (issue 5).

`QueryService.execute` parses a statement, binds it to the topics that exist, opens one
snapshot scan per table reference and runs the transpiled SQL in a locked-down DuckDB session.
Every surface (REST, streamctl, later the shell) goes through it, so they agree on semantics.
"""

from __future__ import annotations

from .results import SqlResult
from .service import QueryService

__all__ = ["QueryService", "SqlResult"]
