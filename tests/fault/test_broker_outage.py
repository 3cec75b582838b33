"""Broker failure while orders are being created: nothing is lost and nothing has a second effect.

tansu keeps its log in memory, so killing its process would also wipe the log, which an
Apache Kafka broker keeps on disk across a restart. The broker is therefore taken off the
network instead (``Broker.stop_listener``: every client connection drops, new ones are
refused, in-flight produce requests lose their acks) and brought back on the same port
with its log, which is what a Kafka broker restart looks like to its clients.

Clients hold their last quarter of orders until the broker is back, so that orders are created both
during the outage (they wait in the outbox) and after the recovery. The audit sends records already on
the topic again before the consumer stops: each event must still have exactly one effect.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ordering.samples import broadband_order

from .harness import count, rig

pytestmark = [pytest.mark.fault, pytest.mark.asyncio]

ORDERS = 1000
CLIENTS = 16


async def test_broker_outage_during_1000_orders(pg_server_url: str) -> None:
    async with rig(pg_server_url) as r:
        broker = r.suite.broker
        assert broker is not None
        created: list[str] = []
        outage: dict[str, int] = {}
        recovered = asyncio.Event()

        async def client_loop(client: httpx.AsyncClient, n: int) -> None:
            for i in range(n, ORDERS, CLIENTS):
                if len(created) >= ORDERS * 3 // 4:
                    await recovered.wait()  # the last quarter is created after the recovery
                response = await client.post(
                    f"{r.api}/productOrder", json=broadband_order(f"CUST-{i % 97}", f"BA-{i}")
                )
                assert response.status_code == 201, response.text
                created.append(response.json()["id"])

        async def break_broker() -> None:
            while len(created) < ORDERS // 4:
                await asyncio.sleep(0.01)
            await broker.stop_listener()
            outage["down"] = len(created)
            while len(created) < ORDERS * 3 // 4:
                await asyncio.sleep(0.01)
            await asyncio.sleep(1.0)
            # The orders created while the broker was away wait in the outbox, unpublished.
            outage["during"] = len(created) - outage["down"]
            outage["unpublished"] = await count(
                r.service_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            )
            await broker.start_listener()
            outage["up"] = len(created)
            recovered.set()

        async with httpx.AsyncClient(timeout=30, headers=r.suite.auth_headers()) as client:
            await asyncio.gather(break_broker(), *(client_loop(client, n) for n in range(CLIENTS)))
        assert len(set(created)) == ORDERS
        # Each order created during the outage (give or take those in flight at its start) has its two
        # events in the outbox, unpublished, until the broker is back.
        assert outage["during"] > ORDERS // 4, outage
        assert outage["unpublished"] >= 2 * (outage["during"] - CLIENTS), outage
        assert ORDERS - outage["up"] >= ORDERS // 4 - CLIENTS, outage  # created after the recovery

        result = await r.audit(events_per_order=2)
        assert result["orders"] == ORDERS
        print(f"broker down after {outage['down']} orders, back after {outage['up']}: {result}")
