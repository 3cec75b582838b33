"""TMF event envelopes and the outbox rows that carry them (the store writes them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tmf_models._base import format_datetime as _models_format

from .context import correlation_id
from .ids import new_id


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_datetime(value: datetime) -> str:
    """A server's time stamp: RFC 3339 in UTC with a ``Z`` suffix, cut to the millisecond, written
    exactly as the TMF models write it back (``…:05.120Z``, and ``…:05Z`` for a whole second), so a
    document that goes through a model again (a PATCH) keeps the same text."""
    return _models_format(value.replace(microsecond=value.microsecond - value.microsecond % 1000))


def listener_name(event_type: str) -> str:
    """``ProductOrderCreateEvent`` -> ``productOrderCreateEvent`` (the hub listener path segment)."""
    return event_type[:1].lower() + event_type[1:]


def envelope(
    event_type: str,
    resource_name: str,
    resource: dict[str, Any],
    *,
    domain: str,
    title: str | None = None,
    description: str | None = None,
    priority: str = "4",
    at: datetime | None = None,
) -> dict[str, Any]:
    """Builds the TMF event envelope: eventId, eventTime, eventType, correlationId, ..., event{resource}."""
    when = format_datetime(at or utc_now())
    event_id = new_id()
    body: dict[str, Any] = {
        "eventId": event_id,
        "eventTime": when,
        "eventType": event_type,
        "domain": domain,
        "title": title or event_type,
        "description": description or f"{event_type} for {resource_name} {resource.get('id')}",
        "priority": priority,
        "timeOcurred": when,
        "event": {resource_name: resource},
    }
    cid = correlation_id.get()
    if cid:
        body["correlationId"] = cid
    return body


def outbox_row(topic: str, key: str, event: dict[str, Any]) -> dict[str, Any]:
    headers = {"eventType": event["eventType"]}
    if event.get("correlationId"):
        headers["correlationId"] = event["correlationId"]
    return {
        "id": event["eventId"],  # text: asyncpg writes it to the uuid column as it is
        "topic": topic,
        "key": key,
        "event_type": event["eventType"],
        "payload": event,
        "headers": headers,
    }


# The outbox's columns, in the order of the store's INSERT (see store.py).
OUTBOX_COLUMNS = ("id", "topic", "key", "event_type", "payload", "headers")
