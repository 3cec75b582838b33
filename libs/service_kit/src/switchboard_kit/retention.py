"""Retention of the kit's bookkeeping rows, so that they do not grow without end.

What is deleted, once it is older than its setting (seconds; 0 keeps everything):

- ``outbox`` rows already published (``outbox_retention``): the broker holds the events;
  unpublished rows are never touched;
- ``hub_delivery`` rows delivered or given up on (``hub_delivery_retention``); pending ones stay;
- ``processed_event`` rows (``processed_event_retention``): keep them longer than the broker
  keeps messages, or a very late redelivery could have a second effect;
- ``idempotency_key`` rows (``idempotency_key_retention``): a retry after that creates anew.

Every instance of a service runs the sweeper; a transaction-level advisory lock lets one of them
sweep at a time. Deletes go in batches so no statement holds many row locks for long.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .db import KitTables

log = logging.getLogger("switchboard.retention")

BATCH = 5000


@dataclass(frozen=True)
class Retention:
    outbox: timedelta
    hub_delivery: timedelta
    processed_event: timedelta
    idempotency_key: timedelta


def _plans(tables: KitTables, retention: Retention) -> list[tuple[str, str, str, timedelta]]:
    """(table, key column, condition on :cutoff, keep) per kind of row."""
    return [
        (tables.outbox.name, "id", "published_at < :cutoff", retention.outbox),
        (
            tables.hub_delivery.name,
            "id",
            "(delivered_at < :cutoff OR failed_at < :cutoff)",
            retention.hub_delivery,
        ),
        (tables.processed_event.name, "ctid", "processed_at < :cutoff", retention.processed_event),
        (tables.idempotency_key.name, "ctid", "created_at < :cutoff", retention.idempotency_key),
    ]


def lock_key(tables: KitTables) -> int:
    """The advisory lock that lets one instance of a service sweep at a time."""
    return zlib.crc32(f"switchboard-retention-{tables.outbox.name}".encode())


async def sweep(
    sessionmaker: async_sessionmaker[AsyncSession],
    tables: KitTables,
    retention: Retention,
    *,
    batch: int = BATCH,
) -> dict[str, int]:
    """Deletes what is past its retention; returns the rows deleted per table (nothing when another
    instance is sweeping)."""
    deleted: dict[str, int] = {}
    lock = lock_key(tables)
    for table, key, condition, keep in _plans(tables, retention):
        if keep <= timedelta(0):
            continue
        total = 0
        while True:
            async with sessionmaker() as session, session.begin():
                if not (
                    await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock})
                ).scalar():
                    return deleted
                result = await session.execute(
                    text(
                        f"DELETE FROM {table} WHERE {key} IN "
                        f"(SELECT {key} FROM {table} WHERE {condition} LIMIT :batch)"
                    ),
                    {"cutoff": _cutoff(keep), "batch": batch},
                )
                count = result.rowcount or 0  # type: ignore[attr-defined]
            total += count
            if count < batch:
                break
        deleted[table] = total
    return deleted


def _cutoff(keep: timedelta) -> datetime:
    return datetime.now(UTC) - keep


async def run(
    sessionmaker: async_sessionmaker[AsyncSession],
    tables: KitTables,
    retention: Retention,
    *,
    interval: float,
) -> None:
    """Sweeps every ``interval`` seconds until cancelled; an error is logged and retried next time."""
    while True:
        try:
            deleted = await sweep(sessionmaker, tables, retention)
            if any(deleted.values()):
                log.info("retention sweep", extra={"deleted": deleted})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("retention sweep failed", extra={"error": repr(exc)})
        await asyncio.sleep(interval)
