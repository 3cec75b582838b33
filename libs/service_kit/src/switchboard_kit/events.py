"""TMF event envelopes and the transactional outbox write."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from .context import correlation_id
from .ids import new_id


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_datetime(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix, millisecond precision."""
    if value.utcoffset():
        value = value.astimezone(UTC)
    # YYYY-MM-DDTHH:MM:SS.mmm+00:00 (an aware datetime always prints an offset)
    return value.isoformat(timespec="milliseconds")[:23] + "Z"


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


async def record(
    session: AsyncSession, outbox: Table, *, topic: str, key: str, event: dict[str, Any]
) -> None:
    """Adds the event to the outbox in the caller's transaction (it is published only if that commits)."""
    await record_many(session, outbox, [outbox_row(topic, key, event)])


async def record_many(session: AsyncSession, outbox: Table, rows: list[dict[str, Any]]) -> None:
    """Adds several outbox rows (see :func:`outbox_row`) in one statement, in the given order."""
    if rows:
        # One cached statement per table: no per-call SQL construction or compilation.
        await session.execute(_insert(outbox), rows)


OUTBOX_COLUMNS = ("id", "topic", "key", "event_type", "payload", "headers")


def outbox_values(rows: list[dict[str, Any]], first: int) -> tuple[str, list[Any]]:
    """``INSERT INTO outbox`` columns and ``VALUES`` of :func:`outbox_row` rows, numbered from ``$first``,
    with their parameters (JSON as text), for a statement run on :func:`db.driver_connection`.

    Rows get their ``seq`` in the order given, as with :func:`record_many`.
    """
    width = len(OUTBOX_COLUMNS)
    groups = []
    params: list[Any] = []
    for i, row in enumerate(rows):
        n = first + i * width
        groups.append(f"(${n}, ${n + 1}, ${n + 2}, ${n + 3}, ${n + 4}::text::jsonb, ${n + 5}::text::jsonb)")
        params += (
            row["id"],
            row["topic"],
            row["key"],
            row["event_type"],
            orjson.dumps(row["payload"]).decode(),
            orjson.dumps(row["headers"]).decode(),
        )
    return f"({', '.join(OUTBOX_COLUMNS)}) VALUES {', '.join(groups)}", params


_INSERTS: dict[Table, Any] = {}


def _insert(outbox: Table) -> Any:
    stmt = _INSERTS.get(outbox)
    if stmt is None:
        stmt = _INSERTS[outbox] = insert(outbox)
    return stmt
