"""SaslHandshake and SaslAuthenticate: SASL/PLAIN against the ``sasl_users`` table.

SASL is on when the table names at least one user; until a connection authenticates, the
connection lets only ApiVersions and these two through. Only handshake v1 is served: v0 would
send the token as a bare frame without a request header, which every client we target avoids by
negotiating v1 through ApiVersions. A failed attempt leaves the connection unauthenticated and
forgets the handshake, so guessing again needs a new handshake (clients reconnect instead).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.context import RequestContext
from streamhouse.broker.kafka.errors import ErrorCode

log = logging.getLogger("streamhouse.kafka")

PLAIN = "PLAIN"
AUTHENTICATION_FAILED = "Authentication failed: invalid username or password"
_DUMMY = b"\x00" * 32  # compared against when the user is unknown, so timing says nothing


async def handshake(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    conn = ctx.connection
    if not ctx.cluster.settings.sasl_users:
        # What Kafka answers on a listener without SASL; librdkafka reports it as a failed
        # handshake, so a client configured for SASL against us says so instead of hanging.
        log.info("SASL handshake from %s, but SASL is off (no --kafka-sasl-users)", conn.peer)
        return {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "mechanisms": []}
    if conn.principal is not None or conn.sasl_mechanism is not None:
        return {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "mechanisms": [PLAIN]}
    if request["mechanism"] != PLAIN:
        return {"error_code": ErrorCode.UNSUPPORTED_SASL_MECHANISM, "mechanisms": [PLAIN]}
    conn.sasl_mechanism = PLAIN
    return {"error_code": 0, "mechanisms": [PLAIN]}


def _check_plain(token: bytes, users: dict[str, str]) -> str | None:
    """The user a PLAIN token (``authzid NUL user NUL password``) proves, else None."""
    parts = token.split(b"\x00")
    if len(parts) != 3:
        return None
    authzid, user_bytes, password = parts
    try:
        user = user_bytes.decode()
        authz = authzid.decode()
    except UnicodeDecodeError:
        return None
    expected = users.get(user)
    matches = hmac.compare_digest(password, _DUMMY if expected is None else expected.encode())
    if expected is None or not matches or not user or authz not in ("", user):
        return None
    return user


async def authenticate(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    conn = ctx.connection
    users = ctx.cluster.settings.sasl_users
    if not users:
        return _refused(ErrorCode.ILLEGAL_SASL_STATE, "SASL is not enabled on this listener")
    if conn.principal is not None:
        return _refused(ErrorCode.ILLEGAL_SASL_STATE, "this connection is already authenticated")
    if conn.sasl_mechanism != PLAIN:
        return _refused(ErrorCode.ILLEGAL_SASL_STATE, "SaslAuthenticate before SaslHandshake")
    user = _check_plain(bytes(request["auth_bytes"] or b""), dict(users))
    if user is None:
        conn.sasl_mechanism = None
        log.info("SASL/PLAIN authentication from %s failed", conn.peer)
        return _refused(ErrorCode.SASL_AUTHENTICATION_FAILED, AUTHENTICATION_FAILED)
    conn.principal = user
    return {"error_code": 0, "error_message": None, "auth_bytes": b"", "session_lifetime_ms": 0}


def _refused(code: ErrorCode, message: str) -> dict[str, Any]:
    return {"error_code": code, "error_message": message, "auth_bytes": b""}


HANDLERS = {
    apis.SASL_HANDSHAKE: handshake,
    apis.SASL_AUTHENTICATE: authenticate,
}
