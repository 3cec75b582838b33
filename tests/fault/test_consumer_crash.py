"""The consumer process is killed (SIGKILL) in the middle of a batch and started again.

Its records' effects commit one by one with their ``processed_event`` rows, and their offsets are
committed after each partition's batch. A kill in between leaves effects whose offsets were never
committed: the restarted consumer reads those records again and must skip them (de-duplication by
eventId), and the audit sends records already on the topic again on top.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ordering.samples import broadband_order

from .harness import committed_offsets, count, rig

pytestmark = [pytest.mark.fault, pytest.mark.asyncio]

ORDERS = 300
CLIENTS = 8


async def test_consumer_killed_mid_batch(pg_server_url: str) -> None:
    async with rig(pg_server_url, consume=False) as r:
        assert r.suite.bootstrap

        async def client_loop(client: httpx.AsyncClient, n: int) -> None:
            for i in range(n, ORDERS, CLIENTS):
                response = await client.post(
                    f"{r.api}/productOrder", json=broadband_order(f"CUST-{i % 53}", f"BA-{i}")
                )
                assert response.status_code == 201, response.text

        async with httpx.AsyncClient(timeout=30, headers=r.suite.auth_headers()) as client:
            await asyncio.gather(*(client_loop(client, n) for n in range(CLIENTS)))
        total = 2 * ORDERS
        async with asyncio.timeout(120):
            while await count(r.service_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL"):
                await asyncio.sleep(0.2)

        # Kill it while its database is ahead of its committed offsets (mid-batch). On a loaded machine
        # the batch can finish (and commit) between the check and the kill: then it is killed again,
        # further on, until a kill lands mid-batch.
        effects = "SELECT count(*) FROM order_effect"
        for attempt in range(5):
            upper = total * 3 // 4 if attempt == 0 else total - 10  # leave records for the restart
            await r.start_consumer_process()
            async with asyncio.timeout(120):
                while True:
                    applied = await count(r.consumer_db, effects)
                    assert applied < upper, f"no kill landed mid-batch before {upper} of {total} effects"
                    if total // 4 < applied:
                        committed = sum((await committed_offsets(r.suite.bootstrap))[1].values())
                        if committed < await count(r.consumer_db, effects):
                            break
                    await asyncio.sleep(0.01)
            await r.kill_consumer_process()
            applied = await count(r.consumer_db, effects)
            committed = sum((await committed_offsets(r.suite.bootstrap))[1].values())
            if committed < applied:
                break
        assert committed < applied < total, (committed, applied)

        # Restarted: it reads the uncommitted records again.
        await r.start_consumer_process()
        result = await r.audit(events_per_order=2)
        assert result["events"] == total
        print(f"killed with {applied} effects and {committed} offsets committed: {result}")
