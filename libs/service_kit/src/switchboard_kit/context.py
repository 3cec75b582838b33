"""Request-scoped context: the correlation id travels into logs and event envelopes."""

from __future__ import annotations

from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
