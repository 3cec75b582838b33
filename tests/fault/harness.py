"""What the fault tests share: the suite on a fresh database, an idempotent consumer with its own
database, and the end-of-test audit (outbox vs topic vs consumer effects)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from sqlalchemy import Column, Integer, Table, Text, insert

from switchboard_dev import testing
from switchboard_dev.launcher import Suite
from switchboard_kit import consumer, db
from tests.scratch import scratch_dir

TOPIC = "tmf622.productOrder"

consumer_metadata = db.new_metadata()
consumer_kit = db.kit_tables(consumer_metadata)
effects = Table(
    "order_effect",
    consumer_metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Text, nullable=False),
    Column("order_id", Text, nullable=False),
)


async def count(url: str, sql: str) -> int:
    engine = db.create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            return int((await conn.exec_driver_sql(sql)).scalar_one())
    finally:
        await engine.dispose()


@dataclass
class Rig:
    suite: Suite
    service_db: str
    consumer_db: str
    stop_consumer: asyncio.Event
    consuming: asyncio.Task[None]
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return self.suite.api_urls["ordering"]

    async def audit(self, *, events_per_order: int) -> dict[str, int]:
        """Everything committed reached the topic, in order per order, and had exactly one effect."""
        async with asyncio.timeout(120):
            while await count(self.service_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL"):
                await asyncio.sleep(0.5)
        orders = await count(self.service_db, "SELECT count(*) FROM product_order")
        total = await count(self.service_db, "SELECT count(*) FROM outbox")
        assert total == events_per_order * orders

        async with asyncio.timeout(120):
            while await count(self.consumer_db, "SELECT count(DISTINCT event_id) FROM order_effect") < total:
                await asyncio.sleep(0.5)
        self.stop_consumer.set()
        await asyncio.wait_for(self.consuming, 30)
        assert await count(self.consumer_db, "SELECT count(*) FROM order_effect") == total
        assert await count(self.consumer_db, "SELECT count(*) FROM processed_event") == total

        engine = db.create_engine(self.service_db)
        async with engine.connect() as conn:
            outbox_ids = {str(r[0]) for r in await conn.exec_driver_sql("SELECT id FROM outbox")}
        await engine.dispose()
        assert self.suite.bootstrap
        records = await read_whole_topic(self.suite.bootstrap, total)
        seen = [orjson.loads(r.value) for r in sorted(records, key=lambda r: (r.partition, r.offset))]
        assert {e["eventId"] for e in seen} == outbox_ids
        first_seen: dict[str, list[str]] = defaultdict(list)
        for envelope in seen:
            states = first_seen[envelope["event"]["productOrder"]["id"]]
            if envelope["event"]["productOrder"]["state"] not in states:
                states.append(envelope["event"]["productOrder"]["state"])
        assert all(states == ["acknowledged", "inProgress"] for states in first_seen.values())
        return {"orders": orders, "events": total, "records": len(seen), "redelivered": len(seen) - total}


async def read_whole_topic(bootstrap: str, expected: int) -> list[Any]:
    reader = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=f"audit-{uuid.uuid4()}"
    )
    await reader.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(60):
            while len(records) < expected:
                for batch in (await reader.getmany(timeout_ms=1000)).values():
                    records.extend(batch)
        for batch in (await reader.getmany(timeout_ms=2000)).values():
            records.extend(batch)
    finally:
        await reader.stop()
    return records


@contextlib.asynccontextmanager
async def rig(pg_server_url: str) -> AsyncIterator[Rig]:
    """The ordering service through the launcher (fulfilment worker off, so each order has exactly a
    create and an inProgress event) and an idempotent consumer of its topic."""
    consumer_db = await asyncio.to_thread(testing.create_database, pg_server_url, "sb_fault_consumer")
    service_db = await asyncio.to_thread(testing.create_database, pg_server_url, "sb_fault_ordering")
    engine = db.create_engine(consumer_db)
    async with engine.begin() as conn:
        await conn.run_sync(consumer_metadata.create_all)
    maker = db.sessionmaker(engine)

    async def apply(session: Any, event: dict[str, Any]) -> None:
        await session.execute(
            insert(effects).values(event_id=event["eventId"], order_id=event["event"]["productOrder"]["id"])
        )

    env = {"ORDERING_WORKER_ENABLED": "false", "ORDERING_HUB_ENABLED": "false"}
    stop_consumer = asyncio.Event()
    # Removed when the rig ends; a failed run keeps only its logs (tests/scratch.py).
    try:
        with scratch_dir("switchboard-fault-") as data_dir:
            async with Suite.ephemeral(
                data_dir, ["ordering"], env=env, service_database_urls={"ordering": service_db}
            ) as suite:
                assert suite.bootstrap
                consuming = asyncio.create_task(
                    consumer.consume(
                        suite.bootstrap,
                        [TOPIC],
                        consumer="fault-test-billing",
                        sessionmaker=maker,
                        processed_event=consumer_kit.processed_event,
                        handler=apply,
                        stop=stop_consumer,
                    )
                )
                try:
                    yield Rig(suite, service_db, consumer_db, stop_consumer, consuming)
                finally:
                    stop_consumer.set()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(consuming, 30)
        assert not data_dir.exists()
    finally:
        await engine.dispose()
        await asyncio.to_thread(testing.drop_database, consumer_db)
        await asyncio.to_thread(testing.drop_database, service_db)
