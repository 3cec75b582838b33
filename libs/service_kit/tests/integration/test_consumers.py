"""Declared event consumers (switchboard_kit.consumer) and the relay's replay to a fresh broker, against
real PostgreSQL and the real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Column, Integer, Table, Text, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_dev import infra, testing
from switchboard_kit import consumer, db, deadletters, events
from switchboard_kit.app import create_service_app
from switchboard_kit.relay import OutboxRelay
from switchboard_kit.settings import ServiceSettings
from switchboard_kit.store import Store, UnitOfWork

pytestmark = pytest.mark.asyncio

metadata = db.new_metadata()
kit = db.kit_tables(metadata)
effects = Table(
    "consumer_effect",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("n", Integer, nullable=False),
)

FAST = consumer.Retry(max_attempts=3, backoff_base=0.05, backoff_max=0.2)


@pytest.fixture(scope="module")
def consumer_db(pg_server_url: str) -> Iterator[str]:
    with testing.database_with(pg_server_url, metadata, "sb_kit_consumer") as url:
        yield url


@pytest_asyncio.fixture
async def engine(consumer_db: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(consumer_db)
    yield engine
    async with engine.begin() as conn:
        await conn.exec_driver_sql("TRUNCATE outbox, processed_event, dead_letter, consumer_effect")
    await engine.dispose()


def thing_event(key: str, n: int) -> dict[str, Any]:
    return events.envelope("ThingStateChangeEvent", "thing", {"id": key, "n": n}, domain="test")


async def send(bootstrap: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def rows(engine: AsyncEngine, stmt: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(stmt)).all())


def runner_for(engine: AsyncEngine, bootstrap: str, topic: str, handler: Any) -> consumer.ConsumerRunner[Any]:
    """A consumer of ``topic`` with a group of its own and quick retries."""
    return consumer.ConsumerRunner(
        consumer.Consumer(topic, f"billing-{topic}", handler),
        Store(engine, kit),
        bootstrap=bootstrap,
        retry=FAST,
    )


@contextlib.asynccontextmanager
async def running(runner: consumer.ConsumerRunner[Any]) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(runner.run())
    try:
        yield task
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)


async def until(predicate: Any, limit_s: float = 30) -> None:
    async with asyncio.timeout(limit_s):
        while not predicate():  # noqa: ASYNC110 - the consumer exposes counters, not events
            await asyncio.sleep(0.05)


class TestConsumerRunner:
    async def test_retries_then_dead_letters_a_poison_record_and_the_partition_moves_on(
        self, engine: AsyncEngine, broker: Any
    ) -> None:
        topic = f"t-{uuid.uuid4()}"
        await infra_topics(broker.bootstrap, topic)
        calls: dict[str, int] = {}

        async def handler(event: consumer.TmfEvent, uow: UnitOfWork) -> None:
            calls[event.eventId] = calls.get(event.eventId, 0) + 1
            n = event.resource["n"]
            if n == 1 and calls[event.eventId] < 3:
                raise RuntimeError("flaky")  # the third attempt succeeds
            if n == 2:
                raise RuntimeError("always broken")
            await uow.execute(insert(effects).values(event_id=event.eventId, key=event.resource["id"], n=n))

        sent = [thing_event("k1", n) for n in range(5)]
        records = [("k1", orjson.dumps(e)) for e in sent]
        records.insert(3, ("k1", b"not json"))
        await send(broker.bootstrap, topic, records)

        runner = runner_for(engine, broker.bootstrap, topic, handler)
        async with running(runner):
            await until(lambda: sum(runner.stats.committed.values()) == 6)
            assert await runner.lag() == 0

        # Order per key kept; the poison record and the always-failing one did not stall the partition.
        done = await rows(engine, select(effects.c.n).order_by(effects.c.id))
        assert [r.n for r in done] == [0, 1, 3, 4]
        assert calls[sent[1]["eventId"]] == 3
        assert calls[sent[2]["eventId"]] == FAST.max_attempts
        letters = await rows(engine, select(kit.dead_letter).order_by(kit.dead_letter.c.offset))
        assert [(r.event_id, r.attempts, r.key) for r in letters] == [
            (sent[2]["eventId"], 3, "k1"),
            (None, 1, "k1"),
        ]
        assert "always broken" in letters[0].error and letters[1].value == b"not json"
        assert runner.stats.dead_lettered == 2
        # ...and to <topic>.DLT with the error in a header.
        dlt = await read(broker.bootstrap, topic + consumer.DLT_SUFFIX, 2)
        assert {dict(r.headers)["error"].decode() for r in dlt} == {letters[0].error, letters[1].error}
        # A dead letter leaves no processed_event row, so a replay can still process it.
        processed = await rows(engine, select(kit.processed_event.c.event_id))
        assert {r.event_id for r in processed} == {sent[n]["eventId"] for n in (0, 1, 3, 4)}

    async def test_redelivered_records_have_no_second_effect(self, engine: AsyncEngine, broker: Any) -> None:
        topic = f"t-{uuid.uuid4()}"
        await infra_topics(broker.bootstrap, topic)

        async def handler(event: consumer.TmfEvent, uow: UnitOfWork) -> None:
            await uow.execute(
                insert(effects).values(
                    event_id=event.eventId, key=event.resource["id"], n=event.resource["n"]
                )
            )

        sent = [thing_event(f"k{n % 3}", n) for n in range(9)]
        records = [(e["event"]["thing"]["id"], orjson.dumps(e)) for e in sent]
        await send(broker.bootstrap, topic, records + records[:4])  # four of them twice
        runner = runner_for(engine, broker.bootstrap, topic, handler)
        async with running(runner):
            await until(lambda: runner.stats.seen == 13 and sum(runner.stats.committed.values()) == 13)
        assert (runner.stats.processed, runner.stats.duplicates) == (9, 4)
        assert (await rows(engine, select(func.count()).select_from(effects)))[0][0] == 9
        assert (await rows(engine, select(func.count()).select_from(kit.processed_event)))[0][0] == 9

    async def test_health_reports_lag_and_a_stopped_consumer(self, engine: AsyncEngine, broker: Any) -> None:
        topic = f"t-{uuid.uuid4()}"
        await infra_topics(broker.bootstrap, topic)
        gate = asyncio.Event()

        async def slow(event: consumer.TmfEvent, uow: UnitOfWork) -> None:
            await gate.wait()

        await send(broker.bootstrap, topic, [("k", orjson.dumps(thing_event("k", n))) for n in range(5)])
        runner = runner_for(engine, broker.bootstrap, topic, slow)
        async with running(runner) as task:
            await until(lambda: runner.stats.seen == 5)
            described = await consumer.describe([runner], [task])
            assert described[runner.name]["state"] == "running"
            assert described[runner.name]["lag"] == 5  # lag alone: still running
            gate.set()
            await until(lambda: sum(runner.stats.committed.values()) == 5)
            assert (await consumer.describe([runner], [task]))[runner.name]["lag"] == 0
        assert (await consumer.describe([runner], [task]))[runner.name]["state"] == "stopped"

    async def test_a_replayed_dead_letter_is_processed_once(
        self, engine: AsyncEngine, broker: Any, consumer_db: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        topic = f"t-{uuid.uuid4()}"
        await infra_topics(broker.bootstrap, topic)
        broken = {"now": True}

        async def handler(event: consumer.TmfEvent, uow: UnitOfWork) -> None:
            if broken["now"]:
                raise RuntimeError("billing account missing")
            await uow.execute(insert(effects).values(event_id=event.eventId, key="k", n=event.resource["n"]))

        await send(broker.bootstrap, topic, [("k", orjson.dumps(thing_event("k", 7)))])
        runner = runner_for(engine, broker.bootstrap, topic, handler)
        async with running(runner):
            await until(lambda: runner.stats.dead_lettered == 1)
            listing = ["--database-url", consumer_db, "list"]
            assert await asyncio.to_thread(deadletters.main, listing) == 0
            assert "billing account missing" in capsys.readouterr().out
            broken["now"] = False  # the cause is fixed: replay it
            argv = ["--database-url", consumer_db, "replay", "--all", "--bootstrap", broker.bootstrap]
            assert await asyncio.to_thread(deadletters.main, argv) == 0
            await until(lambda: runner.stats.processed == 1)
        assert [r.n for r in await rows(engine, select(effects.c.n))] == [7]
        letters = await rows(engine, select(kit.dead_letter.c.replayed_at))
        assert len(letters) == 1 and letters[0].replayed_at is not None
        # Replayed once: a second replay finds nothing pending.
        assert await deadletters.replay(consumer_db, broker.bootstrap, None, None) == 0


async def test_the_app_runs_its_declared_consumers_and_reports_them_when_ready(
    engine: AsyncEngine, broker: Any, consumer_db: str
) -> None:
    """``create_service_app(consumers=...)``: started and stopped with the app; /health/ready shows
    state and lag, and answers 503 only once a consumer has stopped."""
    topic = f"t-{uuid.uuid4()}"
    await infra_topics(broker.bootstrap, topic)

    async def handler(event: consumer.TmfEvent, uow: UnitOfWork) -> None:
        await uow.execute(insert(effects).values(event_id=event.eventId, key="k", n=event.resource["n"]))

    settings = ServiceSettings(
        database_url=consumer_db,
        kafka_bootstrap_servers=broker.bootstrap,
        relay_enabled=False,
        hub_enabled=False,
        retention_interval=0,
    )
    app = create_service_app(
        name="things",
        title="Things",
        version="1.0.0",
        settings=settings,
        base_path="/tmf-api/thing/v1",
        metadata_tables=kit,
        resources=[],
        topics=[],
        consumers=[consumer.Consumer(topic, f"things-{topic}", handler)],
    )
    await send(broker.bootstrap, topic, [("k", orjson.dumps(thing_event("k", n))) for n in range(3)])
    async with testing.running(app) as client:
        runtime = app.state.runtime
        (runner,) = runtime.consumers
        await until(lambda: sum(runner.stats.committed.values()) == 3)
        response = await client.get("/health/ready")
        assert response.status_code == 200, response.text
        assert response.json()["consumers"][runner.name] == {
            "topic": topic,
            "state": "running",
            "lag": 0,
            "processed": 3,
            "deadLettered": 0,
        }
        runner.stop()
        await asyncio.wait_for(asyncio.gather(*runtime.consumer_tasks), 30)
        response = await client.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["consumers"][runner.name]["state"] == "stopped"
    assert runtime.consumer_tasks == []
    assert [r.n for r in await rows(engine, select(effects.c.n).order_by(effects.c.n))] == [0, 1, 2]


async def infra_topics(bootstrap: str, *topics: str) -> None:
    from switchboard_kit.kafka import ensure_topics

    await ensure_topics(bootstrap, topics)


async def read(bootstrap: str, topic: str, expected: int) -> list[Any]:
    reader = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=f"r-{uuid.uuid4()}"
    )
    await reader.start()
    got: list[Any] = []
    try:
        async with asyncio.timeout(30):
            while len(got) < expected:
                for batch in (await reader.getmany(timeout_ms=500)).values():
                    got.extend(batch)
    finally:
        await reader.stop()
    return sorted(got, key=lambda r: (r.partition, r.offset))


class TestReplayToAFreshBroker:
    """The embedded broker keeps nothing across a restart: the relay publishes the retained outbox again."""

    async def test_fresh_broker_gets_every_retained_row_again_in_order(
        self, engine: AsyncEngine, tmp_path: Path
    ) -> None:
        topic = "tmf999.thing"
        store = Store(engine, kit)
        written = []
        async with store.unit_of_work() as uow:
            for n in range(6):
                event = thing_event(f"k{n % 2}", n)
                await uow.emit([events.outbox_row(topic, f"k{n % 2}", event)])
                written.append(event)

        async with infra.Broker(infra.free_port(), log_path=tmp_path / "first.log") as first:
            relay = make_relay(engine, first.bootstrap, topic, replay=True)
            await drain(relay, engine)
            assert relay.replayed == 0  # nothing was published before
        # A restarted embedded broker: empty. Without the replay setting (Apache Kafka) nothing is sent.
        async with infra.Broker(infra.free_port(), log_path=tmp_path / "second.log") as second:
            plain = make_relay(engine, second.bootstrap, topic, replay=False)
            await drain(plain, engine, settle=1.0)
            assert plain.replayed == 0 and plain.published == 0
            relay = make_relay(engine, second.bootstrap, topic, replay=True)
            await drain(relay, engine)
            assert relay.replayed == 6 and relay.published == 6
            got = await read(second.bootstrap, topic, 6)
            per_key: dict[str, list[str]] = {}
            for record in got:
                per_key.setdefault(record.key.decode(), []).append(orjson.loads(record.value)["eventId"])
            assert per_key == {
                key: [e["eventId"] for e in written if e["event"]["thing"]["id"] == key]
                for key in ("k0", "k1")
            }
            # The broker now holds the topic: a relay starting again replays nothing.
            again = make_relay(engine, second.bootstrap, topic, replay=True)
            await drain(again, engine, settle=1.0)
            assert again.replayed == 0


def make_relay(engine: AsyncEngine, bootstrap: str, topic: str, *, replay: bool) -> OutboxRelay:
    return OutboxRelay(
        engine,
        db.sessionmaker(engine),
        kit,
        bootstrap=bootstrap,
        topics=[topic],
        lock_key=4343,
        idempotence=False,
        client_id="test-replay",
        poll_interval=0.05,
        replay_on_empty_topics=replay,
    )


async def drain(relay: OutboxRelay, engine: AsyncEngine, settle: float = 0.0) -> None:
    """Runs the relay until its producer is up and nothing is left unpublished (plus ``settle`` s)."""
    task = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(30):
            while (  # noqa: ASYNC110 - polling the database
                relay.producer is None
                or (await rows(engine, select(func.count()).where(kit.outbox.c.published_at.is_(None))))[0][0]
            ):
                await asyncio.sleep(0.05)
        await asyncio.sleep(settle)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await relay._close_producer()
