"""Outbox relay, hub delivery and idempotent consumption against real PostgreSQL and a real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer
from sqlalchemy import Column, Integer, Table, Text, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from switchboard_dev import testing
from switchboard_dev.infra import free_port
from switchboard_kit import consumer, db, events
from switchboard_kit.context import correlation_id
from switchboard_kit.hub import HubDeliverer
from switchboard_kit.relay import OutboxRelay
from switchboard_kit.store import Store, UnitOfWork

pytestmark = pytest.mark.asyncio

metadata = db.new_metadata()
kit = db.kit_tables(metadata)
effects = Table(
    "effect", metadata, Column("id", Integer, primary_key=True), Column("event_id", Text, nullable=False)
)


@pytest.fixture(scope="module")
def kit_db(pg_server_url: str) -> Iterator[str]:
    with testing.database_with(pg_server_url, metadata, "sb_kit_test") as url:
        yield url


@pytest_asyncio.fixture
async def engine(kit_db: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(kit_db)
    yield engine
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "TRUNCATE outbox, hub_subscription, hub_delivery, processed_event, dead_letter, effect CASCADE"
        )
    await engine.dispose()


async def record_events(
    engine: AsyncEngine, topic: str, keys: list[str], per_key: int
) -> list[dict[str, Any]]:
    store = Store(engine, kit)
    written = []
    token = correlation_id.set("corr-relay")
    try:
        async with store.unit_of_work() as uow:  # one transaction, events in this order
            for n in range(per_key):
                for key in keys:
                    kind = "ThingCreateEvent" if n == 0 else "ThingStateChangeEvent"
                    event = events.envelope(kind, "thing", {"id": key, "n": n}, domain="test")
                    await uow.emit([events.outbox_row(topic, key, event)])
                    written.append(event)
    finally:
        correlation_id.reset(token)
    return written


async def consume_all(bootstrap: str, topic: str, expected: int, limit_s: float = 30) -> list[Any]:
    kafka = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=f"t-{uuid.uuid4()}"
    )
    await kafka.start()
    got: list[Any] = []
    try:
        async with asyncio.timeout(limit_s):
            while len(got) < expected:
                for messages in (await kafka.getmany(timeout_ms=500)).values():
                    got.extend(messages)
    finally:
        await kafka.stop()
    return got


async def drain(relay: OutboxRelay, engine: AsyncEngine, limit_s: float = 30) -> None:
    task = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(limit_s):
            while True:
                async with engine.connect() as conn:
                    left = (
                        await conn.execute(select(func.count()).where(kit.outbox.c.published_at.is_(None)))
                    ).scalar_one()
                if left == 0:
                    return
                await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await relay._close_producer()


def make_relay(engine: AsyncEngine, bootstrap: str, topic: str) -> OutboxRelay:
    return OutboxRelay(
        engine,
        db.sessionmaker(engine),
        kit,
        bootstrap=bootstrap,
        topics=[topic],
        lock_key=4242,
        idempotence=False,
        client_id="test-relay",
        batch_size=17,
        poll_interval=0.05,
    )


class TestRelay:
    async def test_publishes_every_row_in_order_per_key_with_headers(
        self, engine: AsyncEngine, broker: Any
    ) -> None:
        topic = f"test.relay.{uuid.uuid4().hex[:8]}"
        keys = [f"k{i}" for i in range(5)]
        written = await record_events(engine, topic, keys, per_key=10)
        await drain(make_relay(engine, broker.bootstrap, topic), engine)

        messages = await consume_all(broker.bootstrap, topic, len(written))
        assert sorted(orjson.loads(m.value)["eventId"] for m in messages) == sorted(
            e["eventId"] for e in written
        )
        by_key: dict[str, list[int]] = defaultdict(list)
        for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
            payload = orjson.loads(m.value)
            assert m.key.decode() == payload["event"]["thing"]["id"]
            assert dict(m.headers) == {
                "eventType": payload["eventType"].encode(),
                "correlationId": b"corr-relay",
            }
            by_key[m.key.decode()].append(payload["event"]["thing"]["n"])
        assert all(ns == list(range(10)) for ns in by_key.values())

    async def test_only_one_relay_publishes_at_a_time(self, engine: AsyncEngine, broker: Any) -> None:
        topic = f"test.lock.{uuid.uuid4().hex[:8]}"
        written = await record_events(engine, topic, ["a", "b"], per_key=20)
        first, second = (
            make_relay(engine, broker.bootstrap, topic),
            make_relay(engine, broker.bootstrap, topic),
        )
        task = asyncio.create_task(first.run())
        try:
            await drain(second, engine)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await first._close_producer()
        assert first.published + second.published == len(written)
        assert 0 in (first.published, second.published)


class Listener:
    """A real HTTP listener that fails its first ``failures`` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.port = free_port()

        async def listener(request: Request) -> Response:
            body = await request.json()
            self.calls.append((request.path_params["event"], body))
            if len(self.calls) <= self.failures:
                return Response(status_code=503)
            return Response(status_code=204)

        self.app = Starlette(routes=[Route("/cb/listener/{event}", listener, methods=["POST"])])

    @property
    def callback(self) -> str:
        return f"http://127.0.0.1:{self.port}/cb"

    def serve(self) -> contextlib.AbstractAsyncContextManager[None]:
        return testing.serving(self.app, self.port)


class TestHub:
    async def test_matching_events_are_delivered_with_retries(self, engine: AsyncEngine, broker: Any) -> None:
        topic = f"test.hub.{uuid.uuid4().hex[:8]}"
        listener = Listener(failures=2)
        maker = db.sessionmaker(engine)
        async with maker() as session, session.begin():
            await session.execute(
                insert(kit.hub_subscription).values(
                    id="s1", callback=listener.callback, query="eventType=ThingCreateEvent"
                )
            )
            await session.execute(
                insert(kit.hub_subscription).values(
                    id="s2",
                    callback=listener.callback,
                    query="event.thing.id=k1&eventType=ThingStateChangeEvent",
                )
            )
        written = await record_events(engine, topic, ["k0", "k1"], per_key=3)
        await drain(make_relay(engine, broker.bootstrap, topic), engine)

        async with engine.connect() as conn:
            rows = (
                await conn.execute(select(kit.hub_delivery.c.subscription_id, kit.hub_delivery.c.event_id))
            ).all()
        expected = {("s1", e["eventId"]) for e in written if e["eventType"] == "ThingCreateEvent"} | {
            ("s2", e["eventId"])
            for e in written
            if e["eventType"] == "ThingStateChangeEvent" and e["event"]["thing"]["id"] == "k1"
        }
        assert {(r.subscription_id, str(r.event_id)) for r in rows} == expected

        async with listener.serve(), httpx.AsyncClient() as client:
            deliverer = HubDeliverer(maker, kit, client, backoff_base=0.05, backoff_max=0.2)
            async with asyncio.timeout(20):
                while deliverer.delivered < len(expected):
                    await deliverer.deliver_due()
                    await asyncio.sleep(0.05)
        delivered = [body["eventId"] for _, body in listener.calls[listener.failures :]]
        assert sorted(delivered) == sorted(event_id for _, event_id in expected)
        assert {name for name, _ in listener.calls} <= {"thingCreateEvent", "thingStateChangeEvent"}
        async with engine.connect() as conn:
            attempts = (await conn.execute(select(func.sum(kit.hub_delivery.c.attempts)))).scalar_one()
        assert attempts == len(expected) + listener.failures


class TestIdempotentConsumer:
    async def test_redelivered_event_has_no_second_effect(self, engine: AsyncEngine) -> None:
        store = Store(engine, kit)

        async def handler(event: consumer.TmfEvent, uow: UnitOfWork) -> None:
            await uow.execute(insert(effects).values(event_id=event.eventId))

        billing = consumer.Consumer("t", "billing", handler)
        event = consumer.TmfEvent.model_validate(
            events.envelope("ThingCreateEvent", "thing", {"id": "x"}, domain="test")
        )
        results = [await consumer.handle_once(store, billing, event) for _ in range(3)]
        assert results == [True, False, False]
        other = consumer.Consumer("t", "other-consumer", handler)
        assert await consumer.handle_once(store, other, event) is True
        async with engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(effects))).scalar_one() == 2

    async def test_failed_handler_leaves_no_tracking_row(self, engine: AsyncEngine) -> None:
        store = Store(engine, kit)

        async def broken(event: consumer.TmfEvent, uow: UnitOfWork) -> None:
            await uow.execute(insert(effects).values(event_id=event.eventId))
            raise RuntimeError("boom")

        event = consumer.TmfEvent.model_validate(
            events.envelope("ThingCreateEvent", "thing", {"id": "y"}, domain="test")
        )
        with pytest.raises(RuntimeError):
            await consumer.handle_once(store, consumer.Consumer("t", "billing", broken), event)
        async with engine.connect() as conn:
            assert (
                await conn.execute(select(func.count()).select_from(kit.processed_event))
            ).scalar_one() == 0
            assert (await conn.execute(select(func.count()).select_from(effects))).scalar_one() == 0
