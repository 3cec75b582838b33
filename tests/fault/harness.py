"""What the fault tests share: the suite on a fresh database, a consumer of its topic declared as a
service declares one (switchboard_kit.consumer) with its own database, and the end-of-test audit
(outbox vs topic vs consumer effects, after real duplicates were delivered)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import Column, Integer, Table, Text, insert

from switchboard_dev import testing
from switchboard_dev.launcher import Suite
from switchboard_kit import consumer, db
from switchboard_kit.store import Store, UnitOfWork
from tests.scratch import scratch_dir

TOPIC = "tmf622.productOrder"
GROUP = "fault-test-billing"
RESEND = 200  # records already on the topic sent again before the audit (real duplicates)

consumer_metadata = db.new_metadata()
consumer_kit = db.kit_tables(consumer_metadata)
effects = Table(
    "order_effect",
    consumer_metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Text, nullable=False),
    Column("order_id", Text, nullable=False),
)


async def apply(event: consumer.TmfEvent, uow: UnitOfWork) -> None:
    """The consumer's effect: one row per event it applies."""
    await uow.execute(insert(effects).values(event_id=event.eventId, order_id=event.resource["id"]))


def billing_consumer() -> consumer.Consumer[consumer.TmfEvent]:
    return consumer.Consumer(TOPIC, GROUP, apply)


async def committed_offsets(
    bootstrap: str, group: str = GROUP, topic: str = TOPIC
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """(end offsets, ``group``'s committed offsets) of each partition of ``topic``."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        await reader.topics()
        partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
        ends = await reader.end_offsets(partitions)
        return ends, {tp: await reader.committed(tp) or 0 for tp in partitions}
    finally:
        await reader.stop()


async def committed_behind(bootstrap: str, group: str = GROUP, topic: str = TOPIC) -> int:
    """Records on ``topic`` past ``group``'s committed offsets: 0 once the consumer loop has processed
    and committed everything on the topic (the signal the tests wait on)."""
    ends, committed = await committed_offsets(bootstrap, group, topic)
    # At least: tansu reports the end of a partition as its last batch's first offset + 1, so a
    # multi-record batch at the end makes it short (the records sent here go one per batch).
    return sum(max(end - committed[tp], 0) for tp, end in ends.items())


async def resend(bootstrap: str, records: list[Any]) -> None:
    """Sends records already on the topic again: same key, value and headers (a redelivery)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(TOPIC, record.value, key=record.key, headers=list(record.headers))
    finally:
        await producer.stop()


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
    consumer_store: Store
    runner: consumer.ConsumerRunner[Any] | None = None
    consuming: asyncio.Task[None] | None = None
    process: asyncio.subprocess.Process | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def start_consumer(self) -> None:
        """The consumer, in this process."""
        assert self.suite.bootstrap and self.consuming is None
        self.runner = consumer.ConsumerRunner(
            billing_consumer(), self.consumer_store, bootstrap=self.suite.bootstrap
        )
        self.consuming = asyncio.create_task(self.runner.run())

    def check_consumer(self) -> None:
        """Raises what stopped the in-process consumer, if it stopped."""
        if self.consuming is not None and self.consuming.done():
            self.consuming.result()
            raise AssertionError("the consumer stopped")

    async def start_consumer_process(self) -> None:
        """The consumer as a process of its own (tests/fault/consumer_process.py), to be killed."""
        assert self.suite.bootstrap and self.process is None
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.fault.consumer_process", self.consumer_db, self.suite.bootstrap
        )

    async def kill_consumer_process(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.process is not None
        self.process.kill()
        await self.process.wait()
        self.process = None

    async def stop_consumer(self) -> None:
        if self.process is not None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 30)
            self.process = None
        if self.runner is not None and self.consuming is not None:
            self.runner.stop()
            await asyncio.wait_for(self.consuming, 30)
            self.runner = self.consuming = None

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
        # Real duplicates: records already on the topic, sent again while the consumer runs. Wait on
        # the consumer loop's committed offsets (everything read and processed) before counting.
        assert self.suite.bootstrap
        records = await read_whole_topic(self.suite.bootstrap, total)
        await resend(self.suite.bootstrap, records[:RESEND])
        async with asyncio.timeout(120):
            while await committed_behind(self.suite.bootstrap):
                await asyncio.sleep(0.2)
        await self.stop_consumer()
        assert await count(self.consumer_db, "SELECT count(*) FROM order_effect") == total
        assert await count(self.consumer_db, "SELECT count(*) FROM processed_event") == total

        engine = db.create_engine(self.service_db)
        async with engine.connect() as conn:
            outbox_ids = {str(r[0]) for r in await conn.exec_driver_sql("SELECT id FROM outbox")}
        await engine.dispose()
        seen = [orjson.loads(r.value) for r in sorted(records, key=lambda r: (r.partition, r.offset))]
        assert {e["eventId"] for e in seen} == outbox_ids
        first_seen: dict[str, list[str]] = defaultdict(list)
        for envelope in seen:
            states = first_seen[envelope["event"]["productOrder"]["id"]]
            if envelope["event"]["productOrder"]["state"] not in states:
                states.append(envelope["event"]["productOrder"]["state"])
        assert all(states == ["acknowledged", "inProgress"] for states in first_seen.values())
        return {
            "orders": orders,
            "events": total,
            "records": len(seen),
            "redelivered": len(seen) - total,
            "resent": RESEND,
        }


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
async def rig(pg_server_url: str, *, consume: bool = True) -> AsyncIterator[Rig]:
    """The ordering service through the launcher (fulfilment worker off, so each order has exactly a
    create and an inProgress event) and, unless ``consume=False``, the consumer of its topic running
    in this process."""
    consumer_db = await asyncio.to_thread(testing.create_database, pg_server_url, "sb_fault_consumer")
    service_db = await asyncio.to_thread(testing.create_database, pg_server_url, "sb_fault_ordering")
    engine = db.create_engine(consumer_db)
    async with engine.begin() as conn:
        await conn.run_sync(consumer_metadata.create_all)

    env = {"ORDERING_WORKER_ENABLED": "false", "ORDERING_HUB_ENABLED": "false"}
    # Removed when the rig ends; a failed run keeps only its logs (tests/scratch.py).
    try:
        with scratch_dir("switchboard-fault-") as data_dir:
            async with Suite.ephemeral(
                data_dir, ["ordering"], env=env, service_database_urls={"ordering": service_db}
            ) as suite:
                assert suite.bootstrap
                r = Rig(suite, service_db, consumer_db, Store(engine, consumer_kit))
                if consume:
                    r.start_consumer()
                try:
                    yield r
                finally:
                    with contextlib.suppress(Exception):
                        await r.stop_consumer()
        assert not data_dir.exists()
    finally:
        await engine.dispose()
        await asyncio.to_thread(testing.drop_database, consumer_db)
        await asyncio.to_thread(testing.drop_database, service_db)
