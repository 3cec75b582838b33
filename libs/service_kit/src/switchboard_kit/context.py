"""Request-scoped context: the correlation id travels into logs and event envelopes; the caller's
bearer token travels to the sibling services a request calls (switchboard_kit.clients)."""

from __future__ import annotations

from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

bearer_token: ContextVar[str | None] = ContextVar("bearer_token", default=None)
"""The token of the request being served (``Authorization: Bearer <token>``), as sent: set by
RequestMiddleware, not verified there, forwarded to siblings."""
