"""Broker failure while orders are being created: nothing is lost and nothing has a second effect.

tansu keeps its log in memory, so killing its process would also wipe the log, which an
Apache Kafka broker keeps on disk across a restart. The broker is therefore taken off the
network instead (``Broker.stop_listener``: every client connection drops, new ones are
refused, in-flight produce requests lose their acks) and brought back on the same port
with its log, which is what a Kafka broker restart looks like to its clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import Column, Integer, Table, Text, insert

from ordering.samples import broadband_order
from switchboard_kit import consumer, db, testing
from switchboard_kit.launcher import Suite

pytestmark = [pytest.mark.fault, pytest.mark.asyncio]

ORDERS = 1000
CLIENTS = 16
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
        # Drain whatever redeliveries remain behind the expected count.
        for batch in (await reader.getmany(timeout_ms=2000)).values():
            records.extend(batch)
    finally:
        await reader.stop()
    return records


async def test_broker_outage_during_1000_orders(pg_server_url: str) -> None:
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

    data_dir = Path(tempfile.mkdtemp(prefix="switchboard-fault-"))
    # The worker is off so that every order has exactly two events (create, then inProgress).
    env = {"ORDERING_WORKER_ENABLED": "false", "ORDERING_HUB_ENABLED": "false"}
    try:
        async with Suite.ephemeral(
            data_dir, ["ordering"], env=env, service_database_urls={"ordering": service_db}
        ) as suite:
            assert suite.broker is not None and suite.bootstrap
            api = suite.api_urls["ordering"]
            stop_consumer = asyncio.Event()
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
            created: list[str] = []
            outage = {"down": 0, "up": 0}

            async def client_loop(client: httpx.AsyncClient, n: int) -> None:
                for i in range(n, ORDERS, CLIENTS):
                    response = await client.post(
                        f"{api}/productOrder", json=broadband_order(f"CUST-{i % 97}", f"BA-{i}")
                    )
                    assert response.status_code == 201, response.text
                    created.append(response.json()["id"])

            async def break_broker() -> None:
                while len(created) < ORDERS // 4:
                    await asyncio.sleep(0.01)
                await suite.broker.stop_listener()  # type: ignore[union-attr]
                outage["down"] = len(created)
                while len(created) < ORDERS * 3 // 4:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(1.0)
                await suite.broker.start_listener()  # type: ignore[union-attr]
                outage["up"] = len(created)

            async with httpx.AsyncClient(timeout=30) as client:
                await asyncio.gather(break_broker(), *(client_loop(client, n) for n in range(CLIENTS)))
            assert len(set(created)) == ORDERS
            assert outage["down"] < outage["up"], outage

            # Every outbox row is published, i.e. acknowledged by the broker.
            async with asyncio.timeout(120):
                while await count(service_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL"):
                    await asyncio.sleep(0.5)
            total_events = await count(service_db, "SELECT count(*) FROM outbox")
            assert total_events == 2 * ORDERS

            # The idempotent consumer applied each event exactly once.
            async with asyncio.timeout(120):
                while (
                    await count(consumer_db, "SELECT count(DISTINCT event_id) FROM order_effect")
                    < total_events
                ):
                    await asyncio.sleep(0.5)
            stop_consumer.set()
            await asyncio.wait_for(consuming, 30)
            assert await count(consumer_db, "SELECT count(*) FROM order_effect") == total_events
            assert await count(consumer_db, "SELECT count(*) FROM processed_event") == total_events

            # The topic holds every outbox event (redeliveries allowed), in order per order.
            engine_svc = db.create_engine(service_db)
            async with engine_svc.connect() as conn:
                outbox_ids = {str(r[0]) for r in await conn.exec_driver_sql("SELECT id FROM outbox")}
            await engine_svc.dispose()
            records = await read_whole_topic(suite.bootstrap, total_events)
            seen = [orjson.loads(r.value) for r in sorted(records, key=lambda r: (r.partition, r.offset))]
            assert {e["eventId"] for e in seen} == outbox_ids
            first_seen: dict[str, list[str]] = defaultdict(list)
            for envelope in seen:
                states = first_seen[envelope["event"]["productOrder"]["id"]]
                state = envelope["event"]["productOrder"]["state"]
                if state not in states:
                    states.append(state)
            assert all(states == ["acknowledged", "inProgress"] for states in first_seen.values())
            duplicates = len(seen) - len(outbox_ids)
            print(
                f"outage after {outage['down']} orders, back after {outage['up']}; {len(seen)} records, {duplicates} redelivered"
            )
    finally:
        with contextlib.suppress(Exception):
            stop_consumer.set()  # type: ignore[possibly-undefined]
        await engine.dispose()
        await asyncio.to_thread(testing.drop_database, consumer_db)
        await asyncio.to_thread(testing.drop_database, service_db)
