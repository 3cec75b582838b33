"""Outbox relay: publishes outbox rows to Kafka in commit order and marks them only after the broker acks.

One relay per service database publishes at a time: it holds a PostgreSQL advisory lock
on a dedicated connection. Rows are read in ``seq`` order, sent, and every ack is awaited
before ``published_at`` is set. A resource's events share a key and so a partition, and a
batch for one partition goes out as one produce request, so per-resource order holds. A
crash between the ack and the commit republishes the batch: delivery is at-least-once and
consumers deduplicate on ``eventId``.

The embedded broker of ``make run`` keeps nothing across its restarts. With
``replay_on_empty_topics`` (the launcher sets it for that broker only), a relay that connects and
finds every topic of its service empty publishes every outbox row still retained again, in ``seq``
order with its original ``eventId``; consumers deduplicate them. Against Apache Kafka the setting is
off and nothing is replayed.

After publishing, the relay fans the batch out to matching hub subscriptions
(``hub_delivery`` rows) in the same transaction, so hub delivery is fed from the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .db import KitTables
from .hub import subscription_matches
from .kafka import ensure_topics

log = logging.getLogger("switchboard.relay")


def make_producer(bootstrap: str, *, idempotence: bool, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=idempotence,
        linger_ms=2,
        request_timeout_ms=10_000,
        retry_backoff_ms=200,
        key_serializer=lambda k: k.encode(),
        value_serializer=orjson.dumps,
    )


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        tables: KitTables,
        *,
        bootstrap: str,
        topics: list[str],
        lock_key: int,
        idempotence: bool,
        client_id: str,
        batch_size: int = 200,
        poll_interval: float = 0.2,
        replay_on_empty_topics: bool = False,
    ) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.tables = tables
        self.bootstrap = bootstrap
        self.topics = topics
        self.lock_key = lock_key
        self.idempotence = idempotence
        self.client_id = client_id
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.replay_on_empty_topics = replay_on_empty_topics
        self.replayed = 0
        self.producer: AIOKafkaProducer | None = None
        self.published = 0
        self.broker_ok = False
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Hint that new rows were committed (saves a poll interval)."""
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                async with self.engine.connect() as lock_conn:
                    got = (
                        await lock_conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.lock_key})
                    ).scalar()
                    await lock_conn.commit()
                    if not got:
                        await asyncio.sleep(2.0)
                        continue
                    try:
                        await self._publish_loop()
                    finally:
                        await lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.lock_key})
                        await lock_conn.commit()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.broker_ok = False
                log.warning("outbox relay error, retrying", extra={"error": repr(exc), "backoff": backoff})
                await self._close_producer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                backoff = 0.2

    async def _close_producer(self) -> None:
        if self.producer is not None:
            producer, self.producer = self.producer, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5)

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self.producer is None:
            await ensure_topics(self.bootstrap, self.topics)
            producer = make_producer(self.bootstrap, idempotence=self.idempotence, client_id=self.client_id)
            try:
                await producer.start()
                # Before the first publish (an empty topic is a broker that kept nothing).
                if self.replay_on_empty_topics and await topics_empty(self.bootstrap, self.topics):
                    await self.replay()
            except BaseException:
                await producer.stop()
                raise
            self.producer = producer
        return self.producer

    async def replay(self) -> int:
        """Marks every retained outbox row unpublished, so that it is published again in order."""
        outbox = self.tables.outbox
        async with self.sessionmaker() as session, session.begin():
            result = await session.execute(
                update(outbox).where(outbox.c.published_at.is_not(None)).values(published_at=None)
            )
        count = int(getattr(result, "rowcount", 0) or 0)
        if count:
            log.warning(
                "the broker's topics are empty: publishing the retained outbox again", extra={"rows": count}
            )
        self.replayed += count
        return count

    async def _publish_loop(self) -> None:
        while True:
            producer = await self._ensure_producer()
            self.broker_ok = True
            sent = await self.publish_batch(producer)
            if sent == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def publish_batch(self, producer: AIOKafkaProducer) -> int:
        outbox = self.tables.outbox
        async with self.sessionmaker() as session, session.begin():
            rows = (
                await session.execute(
                    select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.payload, outbox.c.headers)
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.seq)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            futures = []
            for row in rows:
                headers = [(k, str(v).encode()) for k, v in (row.headers or {}).items()]
                futures.append(await producer.send(row.topic, row.payload, key=row.key, headers=headers))
            # Every ack, or the whole transaction rolls back and the batch is sent again.
            await asyncio.wait_for(asyncio.gather(*futures), 30)
            ids = [row.id for row in rows]
            await session.execute(
                update(outbox).where(outbox.c.id.in_(ids)).values(published_at=text("now()"))
            )
            await self._fan_out_to_hub(session, [row.payload for row in rows])
        self.published += len(rows)
        return len(rows)

    async def _fan_out_to_hub(self, session: AsyncSession, events: list[dict[str, Any]]) -> None:
        hub_subscription, hub_delivery = self.tables.hub_subscription, self.tables.hub_delivery
        subs = (await session.execute(select(hub_subscription.c.id, hub_subscription.c.query))).all()
        if not subs:
            return
        values = [
            {
                "subscription_id": sub.id,
                "event_id": event["eventId"],
                "event_type": event["eventType"],
                "payload": event,
            }
            for event in events
            for sub in subs
            if subscription_matches(sub.query, event)
        ]
        if values:
            await session.execute(pg_insert(hub_delivery).values(values).on_conflict_do_nothing())


async def topics_empty(bootstrap: str, topics: list[str]) -> bool:
    """True if no partition of ``topics`` has ever had a record (a broker that kept nothing)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await reader.start()
    try:
        await reader.topics()  # metadata
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in reader.partitions_for_topic(topic) or ()
        ]
        if not partitions:
            return True
        ends = await reader.end_offsets(partitions)
        return all(offset == 0 for offset in ends.values())
    finally:
        await reader.stop()
