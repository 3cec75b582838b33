"""Charges from orders on the real broker: billing's consumer reads ``tmf622.productOrder`` events and a
completed order's prices become unbilled rates on its billing account, once however often its events
arrive; cancelled and unfinished orders charge nothing. Real PostgreSQL, the real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from billing import samples
from billing.app import create_app
from switchboard_dev import testing

from ..conftest import ACCOUNTS, RATES, SERVICE_DIR, make_settings

pytestmark = pytest.mark.asyncio


@pytest.fixture
def charges_db(pg_server_url: str) -> Iterator[str]:
    """A database of its own: the consumer commits for real (no rolled-back test transaction)."""
    url = testing.create_database(pg_server_url, "sb_billing_charges")
    testing.migrate(SERVICE_DIR / "alembic.ini", url)
    yield url
    testing.drop_database(url)


async def produce(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            order = event["event"]["productOrder"]
            await producer.send_and_wait(topic, orjson.dumps(event), key=order["id"].encode())
    finally:
        await producer.stop()


async def until(predicate: Any, limit_s: float = 60) -> None:
    async with asyncio.timeout(limit_s):
        while not predicate():  # noqa: ASYNC110 - the consumer exposes counters, not events
            await asyncio.sleep(0.1)


async def test_completed_orders_charge_once_and_others_not_at_all(charges_db: str, broker: Any) -> None:
    topic = f"tmf622.productOrder.{uuid.uuid4().hex[:8]}"  # this test's own order stream
    fibre = samples.completed_order("ORD-A", "BA-X1", "CUST-X1", [samples.FIBRE_500, samples.ROUTER])
    in_progress = {**fibre, "state": "inProgress"}
    del in_progress["completionDate"]
    sim = samples.completed_order(
        "ORD-C", "BA-X1", "CUST-X1", [samples.SIM_ONLY], completed_at="2026-11-21T08:00:00Z"
    )
    cancelled = samples.completed_order("ORD-B", "BA-X2", "CUST-X2", [samples.SIM_ONLY], state="cancelled")
    sim_again = samples.order_event(sim, "ev-5", event_type="ProductOrderAttributeValueChangeEvent")
    events = [
        samples.order_event(in_progress, "ev-1"),
        samples.order_event(fibre, "ev-2"),
        samples.order_event(cancelled, "ev-3"),
        samples.order_event(sim, "ev-4"),
        samples.order_event(sim, "ev-4"),  # a redelivery: the kit skips it
        sim_again,  # another event of the same completed order: the order is charged once
        samples.order_event(fibre, "ev-6"),
    ]
    await produce(broker.bootstrap, topic, events)
    settings = make_settings(
        charges_db,
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_enable_idempotence=False,  # the embedded broker has no idempotent producer
        orders_topic=topic,
        orders_group=f"billing-{topic}",
        consumer_backoff_base=0.05,
        consumer_backoff_max=0.1,
        consumer_max_attempts=2,
    )
    app = create_app(settings)
    async with testing.running(app) as client:
        (runner,) = app.state.runtime.consumers
        await until(
            lambda: (
                runner.stats.processed + runner.stats.duplicates + runner.stats.dead_lettered >= len(events)
            )
        )
        assert (runner.stats.processed, runner.stats.duplicates, runner.stats.dead_lettered) == (6, 1, 0)
        dead = await testing.sql(app, "SELECT count(*) AS n FROM dead_letter")
        assert dead[0]["n"] == 0

        rates = (await client.get(RATES, params={"sort": "date"})).json()
        # BA-X1, cycle day 1. ORD-A active from 16 November (15 of 30 days): Fibre 500 monthly 40.00
        # -> 20.00, installation 50.00, router 99.00. ORD-C from 21 November (10 of 30 days): SIM-only
        # 10.00 -> 3.33 (3.333... half-even). VAT 21% per line.
        got = sorted(
            (
                r["characteristic"][0]["value"],
                r["name"],
                r["type"],
                r["taxExcludedAmount"]["value"],
                r["appliedTax"][0]["taxAmount"]["value"],
                r["taxIncludedAmount"]["value"],
                r["isBilled"],
            )
            for r in rates
        )
        assert got == [
            ("ORD-A", "Fibre Broadband 500 monthly fee", "recurringCharge", 20, 4.2, 24.2, False),
            ("ORD-A", "Fibre installation", "oneTimeCharge", 50, 10.5, 60.5, False),
            ("ORD-A", "Wi-Fi 6 router", "oneTimeCharge", 99, 20.79, 119.79, False),
            ("ORD-C", "SIM-only 20GB monthly fee", "recurringCharge", 3.33, 0.7, 4.03, False),
        ]
        assert {r["billingAccount"]["id"] for r in rates} == {"BA-X1"}
        sim_rate = next(r for r in rates if r["characteristic"][0]["value"] == "ORD-C")
        assert sim_rate["periodCoverage"] == {
            "startDateTime": "2026-11-21T08:00:00Z",
            "endDateTime": "2026-12-01T00:00:00Z",
        }
        # The account is learned from the orders; the cancelled order's is not.
        accounts = (await client.get(ACCOUNTS)).json()
        assert [(a["id"], a["currency"], a["relatedParty"][0]["id"]) for a in accounts] == [
            ("BA-X1", "EUR", "CUST-X1")
        ]
        # The recurring charges wait for the bill runs, from the end of the current period.
        recurring = await testing.sql(
            app,
            "SELECT id, next_period_start::text AS start, amount::text AS amount FROM recurring_charge ORDER BY id",
        )
        assert recurring == [
            {"id": "ORD-A:1:0", "start": "2026-12-01", "amount": "40"},
            {"id": "ORD-C:1:0", "start": "2026-12-01", "amount": "10"},
        ]
