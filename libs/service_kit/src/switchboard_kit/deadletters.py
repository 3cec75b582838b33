"""Lists and replays the dead letters of a service's event consumers (switchboard_kit.consumer).

    python -m switchboard_kit.deadletters --database-url URL list [--all]
    python -m switchboard_kit.deadletters --database-url URL replay ID [ID ...]
    python -m switchboard_kit.deadletters --database-url URL replay --all [--consumer GROUP]

The database is ``--database-url``, else ``DATABASE_URL``; the broker ``--bootstrap``, else
``KAFKA_BOOTSTRAP_SERVERS``. (Next to ``make run``, the dev tooling finds both by itself.)

Replaying publishes the record again, as it was read (same key, value and headers), to its topic,
and marks the dead letter replayed. Consumer groups that already processed the event skip it (they
de-duplicate by ``eventId``); the one that gave up processes it like any new record.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update

from . import db

tables = db.kit_tables(db.new_metadata())


async def list_dead_letters(url: str, *, everything: bool, consumer: str | None) -> list[dict[str, Any]]:
    engine = db.create_engine(url, pool_size=1, max_overflow=0)
    dead_letter = tables.dead_letter
    stmt = select(dead_letter).order_by(dead_letter.c.id)
    if not everything:
        stmt = stmt.where(dead_letter.c.replayed_at.is_(None))
    if consumer:
        stmt = stmt.where(dead_letter.c.consumer == consumer)
    try:
        async with engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(stmt)]
    finally:
        await engine.dispose()


async def replay(url: str, bootstrap: str, ids: Sequence[int] | None, consumer: str | None) -> int:
    """Publishes the dead letters again (all pending ones when ``ids`` is None); returns how many."""
    from aiokafka import AIOKafkaProducer

    letters = [
        row
        for row in await list_dead_letters(url, everything=False, consumer=consumer)
        if ids is None or row["id"] in ids
    ]
    if not letters:
        return 0
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    engine = db.create_engine(url, pool_size=1, max_overflow=0)
    await producer.start()
    try:
        for row in letters:
            await producer.send_and_wait(
                row["topic"],
                bytes(row["value"]),
                key=row["key"].encode() if row["key"] is not None else None,
                headers=[(k, str(v).encode()) for k, v in row["headers"]],
            )
            async with engine.begin() as conn:
                await conn.execute(
                    update(tables.dead_letter)
                    .where(tables.dead_letter.c.id == row["id"])
                    .values(replayed_at=func.now())
                )
    finally:
        await producer.stop()
        await engine.dispose()
    return len(letters)


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m switchboard_kit.deadletters") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="the service database's SQLAlchemy URL (DATABASE_URL)")
    parser.add_argument("--consumer", help="only this consumer group's dead letters")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="dead letters not replayed yet")
    listing.add_argument("--all", action="store_true", help="replayed ones too")
    again = sub.add_parser("replay", help="publish dead letters again to their topic")
    again.add_argument("ids", nargs="*", type=int, help="dead letter ids (from `list`)")
    again.add_argument("--all", action="store_true", help="every dead letter not replayed yet")
    again.add_argument("--bootstrap", help="Kafka bootstrap servers (KAFKA_BOOTSTRAP_SERVERS)")
    args = parser.parse_args(argv)
    url = args.database_url or os.environ.get("DATABASE_URL")
    if not url:
        parser.error("no database: pass --database-url or set DATABASE_URL")
    if args.command == "list":
        rows = asyncio.run(list_dead_letters(url, everything=args.all, consumer=args.consumer))
        for row in rows:
            replayed = f" replayed {row['replayed_at']:%Y-%m-%dT%H:%M:%SZ}" if row["replayed_at"] else ""
            print(
                f"{row['id']}\t{row['failed_at']:%Y-%m-%dT%H:%M:%SZ}\t{row['consumer']}\t"
                f"{row['topic']}[{row['partition']}]@{row['offset']}\teventId={row['event_id']}\t"
                f"attempts={row['attempts']}\t{row['error']}{replayed}"
            )
        print(f"{len(rows)} dead letter(s)", file=sys.stderr)
        return 0
    if not args.ids and not args.all:
        parser.error("replay needs dead letter ids or --all")
    bootstrap = args.bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        parser.error("no broker: pass --bootstrap or set KAFKA_BOOTSTRAP_SERVERS")
    count = asyncio.run(replay(url, bootstrap, None if args.all else args.ids, args.consumer))
    print(f"replayed {count} dead letter(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
