"""The ordering service is killed (SIGKILL) while clients create orders and its relay publishes.

Clients retry with the same Idempotency-Key until they get an answer, as a well-behaved
integrator would. Afterwards there is exactly one order per key, every committed event is on
the topic (a batch acknowledged by the broker but not yet marked in the outbox is sent again),
and the idempotent consumer applied each event once.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ordering.samples import broadband_order

from .harness import count, rig

pytestmark = [pytest.mark.fault, pytest.mark.asyncio]

ORDERS = 400
CLIENTS = 8


async def test_service_killed_mid_stream(pg_server_url: str) -> None:
    async with rig(pg_server_url) as r:
        answered: list[str] = []
        failures = {"connection": 0}

        async def create(client: httpx.AsyncClient, i: int) -> None:
            body = broadband_order(f"CUST-{i % 53}", f"BA-{i}")
            async with asyncio.timeout(120):
                while True:
                    try:
                        response = await client.post(
                            f"{r.api}/productOrder", json=body, headers={"Idempotency-Key": f"crash-{i}"}
                        )
                    except httpx.TransportError:
                        failures["connection"] += 1
                        await asyncio.sleep(0.2)
                        continue
                    assert response.status_code == 201, response.text
                    answered.append(response.json()["id"])
                    return

        async def client_loop(client: httpx.AsyncClient, n: int) -> None:
            for i in range(n, ORDERS, CLIENTS):
                await create(client, i)

        async def crash() -> None:
            while len(answered) < ORDERS // 3:
                await asyncio.sleep(0.01)
            r.suite.kill_service("ordering")
            await asyncio.sleep(1.0)
            await r.suite.restart_service("ordering")

        async with httpx.AsyncClient(timeout=10, headers=r.suite.auth_headers()) as client:
            await asyncio.gather(crash(), *(client_loop(client, n) for n in range(CLIENTS)))

        assert failures["connection"] > 0, "the crash happened while requests were in flight"
        assert len(answered) == ORDERS
        assert len(set(answered)) == ORDERS, "a retried request got a second order"
        assert await count(r.service_db, "SELECT count(*) FROM product_order") == ORDERS
        result = await r.audit(events_per_order=2)
        print(f"{failures['connection']} requests hit the crash: {result}")
