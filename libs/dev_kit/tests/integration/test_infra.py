"""The embedded infrastructure really works: tansu speaks Kafka to aiokafka, PostgreSQL to asyncpg."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from switchboard_dev.infra import (
    Broker,
    database_url,
    ensure_database,
    ensure_topics,
    free_port,
    start_postgres,
)

TOPIC = "test.infra"


async def produce(bootstrap: str, values: list[bytes]) -> None:
    # enable_idempotence=False: tansu has no InitProducerId.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(TOPIC, value, key=value)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, expected: int, wait: float = 10.0) -> list[bytes]:
    """Reads every partition from the start with a fresh, group-less consumer."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()  # refreshes metadata
        consumer.assign([TopicPartition(TOPIC, p) for p in consumer.partitions_for_topic(TOPIC) or ()])
        got: list[bytes] = []
        deadline = time.monotonic() + wait
        while len(got) < expected and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                got.extend(m.value for m in messages if m.value is not None)
        return got
    finally:
        await consumer.stop()


@pytest.fixture
def pg_dir():
    # Not tmp_path: a concurrent pytest session prunes old /tmp/pytest-of-<user>/pytest-N
    # directories, and that can pull the data directory from under a running server.
    path = Path(tempfile.mkdtemp(prefix="sb-pg-"))
    yield path / "pg"
    shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture
async def broker():
    b = Broker(free_port(), topics=[TOPIC])
    await b.start()
    yield b
    await b.stop()


class TestBroker:
    @pytest.mark.asyncio
    async def test_produce_and_consume(self, broker: Broker) -> None:
        values = [f"m{i}".encode() for i in range(20)]

        await produce(broker.bootstrap, values)

        assert sorted(await read_all(broker.bootstrap, len(values))) == sorted(values)

    @pytest.mark.asyncio
    async def test_consumer_group_reads_and_commits(self, broker: Broker) -> None:
        await produce(broker.bootstrap, [b"a", b"b", b"c"])
        consumer = AIOKafkaConsumer(
            TOPIC,
            bootstrap_servers=broker.bootstrap,
            group_id="test-group",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            heartbeat_interval_ms=500,  # joins in ~3 s instead of ~5 s on tansu
        )
        await consumer.start()
        try:
            got: list[bytes] = []
            deadline = time.monotonic() + 20
            while len(got) < 3 and time.monotonic() < deadline:
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    got.extend(m.value for m in messages if m.value is not None)
            await consumer.commit()
            committed = {tp: await consumer.committed(tp) for tp in consumer.assignment()}
        finally:
            await consumer.stop()

        assert sorted(got) == [b"a", b"b", b"c"]
        assert sum(offset or 0 for offset in committed.values()) == 3

    @pytest.mark.asyncio
    async def test_restart_on_same_port(self, broker: Broker) -> None:
        port = broker.port
        await produce(broker.bootstrap, [b"before"])

        await broker.stop()
        assert not broker.running
        await broker.start()

        assert broker.port == port
        await produce(broker.bootstrap, [b"after"])
        # Memory storage: what was sent before the restart is gone.
        assert await read_all(broker.bootstrap, 1) == [b"after"]

    @pytest.mark.asyncio
    async def test_producer_survives_restart(self, broker: Broker) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(TOPIC, b"before", key=b"k")
            await broker.stop()
            pending = asyncio.ensure_future(producer.send_and_wait(TOPIC, b"during", key=b"k"))
            await asyncio.sleep(1)
            await broker.start()
            await asyncio.wait_for(pending, 30)
            await producer.send_and_wait(TOPIC, b"after", key=b"k")
        finally:
            await producer.stop()

        # Readable because Broker.start() recreated the topic before the producer reconnected.
        assert sorted(await read_all(broker.bootstrap, 2)) == [b"after", b"during"]

    @pytest.mark.asyncio
    async def test_ensure_topics_is_idempotent(self, broker: Broker) -> None:
        await ensure_topics(broker.bootstrap, ["test.other", TOPIC], partitions=2)
        await ensure_topics(broker.bootstrap, ["test.other"], partitions=2)

        await broker.wait_ready(5)


class TestPostgres:
    @pytest.mark.asyncio
    async def test_start_connect_and_reuse(self, pg_dir: Path) -> None:
        data_dir = pg_dir
        pg = await asyncio.to_thread(start_postgres, data_dir)
        try:
            url = await ensure_database(pg.url, "switchboard_test")
            assert url == pg.url_for("switchboard_test")
            assert await ensure_database(pg.url, "switchboard_test") == url  # exists: no error
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                await conn.execute("CREATE TABLE kept (id int)")
                await conn.execute("INSERT INTO kept VALUES (42)")
            finally:
                await conn.close()
        finally:
            await asyncio.to_thread(pg.stop)

        # A second start reuses the data directory.
        pg = await asyncio.to_thread(start_postgres, data_dir)
        try:
            conn = await asyncpg.connect(
                database_url(pg.url, "switchboard_test").replace("postgresql+asyncpg://", "postgresql://")
            )
            try:
                assert await conn.fetchval("SELECT id FROM kept") == 42
            finally:
                await conn.close()
        finally:
            await asyncio.to_thread(pg.stop)

    @pytest.mark.asyncio
    async def test_url_works_with_sqlalchemy(self, pg_dir: Path) -> None:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        pg = await asyncio.to_thread(start_postgres, pg_dir)
        try:
            engine = create_async_engine(await ensure_database(pg.url, "switchboard_sa"))
            try:
                async with engine.connect() as conn:
                    assert (
                        await conn.execute(text("SELECT current_database()"))
                    ).scalar() == "switchboard_sa"
            finally:
                await engine.dispose()
        finally:
            await asyncio.to_thread(pg.stop)
