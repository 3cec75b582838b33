"""Idempotent Kafka consumption: each handler's effects and its ``(consumer, eventId)`` row commit together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger("switchboard.consumer")

Handler = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]


async def first_delivery(session: AsyncSession, processed_event: Table, consumer: str, event_id: str) -> bool:
    """Records the event as processed; False if this consumer has already processed it."""
    result = await session.execute(
        pg_insert(processed_event)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(processed_event.c.event_id)
    )
    return result.first() is not None


async def handle_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    processed_event: Table,
    consumer: str,
    event: dict[str, Any],
    handler: Handler,
) -> bool:
    """Runs ``handler`` in one transaction with the tracking row; returns False for a redelivery."""
    event_id = str(event.get("eventId") or "")
    if not event_id:
        raise ValueError("event has no eventId")
    async with sessionmaker() as session, session.begin():
        if not await first_delivery(session, processed_event, consumer, event_id):
            return False
        await handler(session, event)
    return True


async def consume(
    bootstrap: str,
    topics: list[str],
    *,
    consumer: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    processed_event: Table,
    handler: Handler,
    stop: asyncio.Event | None = None,
) -> None:
    """Consumes ``topics`` as group ``consumer``; offsets are committed only after the DB transaction."""
    kafka = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=consumer,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        value_deserializer=orjson.loads,
    )
    await kafka.start()
    try:
        while stop is None or not stop.is_set():
            batches = await kafka.getmany(timeout_ms=500)
            for _tp, messages in batches.items():
                for message in messages:
                    await handle_once(sessionmaker, processed_event, consumer, message.value, handler)
            if batches:
                await kafka.commit()
    finally:
        await kafka.stop()
