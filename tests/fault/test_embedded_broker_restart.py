"""The embedded broker keeps nothing across a restart, not even committed offsets (README, Events).

An order is created and its events published; the suite stops before any consumer read them and
starts again on a fresh embedded broker. The relay finds its topics empty and publishes the retained
outbox again, in order and with the original eventIds, so the consumer still gets the events; after
a second restart it gets them again and de-duplicates them: each event has one effect.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ordering.samples import broadband_order

from .harness import committed_behind, count, rig

pytestmark = [pytest.mark.fault, pytest.mark.asyncio]

EFFECTS = "SELECT count(*) FROM order_effect"


async def test_restarted_embedded_broker_loses_no_event(pg_server_url: str) -> None:
    async with rig(pg_server_url, consume=False) as r:
        async with httpx.AsyncClient(timeout=30, headers=r.suite.auth_headers()) as client:
            response = await client.post(f"{r.api}/productOrder", json=broadband_order("CUST-1", "BA-1"))
        assert response.status_code == 201, response.text
        async with asyncio.timeout(60):
            while await count(r.service_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL"):
                await asyncio.sleep(0.1)
        events = await count(r.service_db, "SELECT count(*) FROM outbox")
        assert events == 2  # created, then inProgress (the worker is off)

        # Stopped before a consumer read them: the broker's log is gone with it.
        await r.suite.stop()
        await r.suite.start()
        r.start_consumer()
        assert r.runner is not None and r.suite.bootstrap
        async with asyncio.timeout(60):
            while await count(r.consumer_db, EFFECTS) < events:
                r.check_consumer()
                await asyncio.sleep(0.1)
            while await committed_behind(r.suite.bootstrap):
                await asyncio.sleep(0.1)
        assert r.runner.stats.processed == events
        await r.stop_consumer()

        # Once more: the replayed events reach the consumer again (its committed offsets are gone
        # too) and are skipped.
        await r.suite.stop()
        await r.suite.start()
        r.start_consumer()
        runner = r.runner
        assert runner is not None and r.suite.bootstrap
        async with asyncio.timeout(60):
            while runner.stats.seen < events:
                await asyncio.sleep(0.1)
            while await committed_behind(r.suite.bootstrap):
                await asyncio.sleep(0.1)
        assert (runner.stats.processed, runner.stats.duplicates) == (0, events)
        await r.stop_consumer()
        assert await count(r.consumer_db, EFFECTS) == events
        assert await count(r.consumer_db, "SELECT count(*) FROM processed_event") == events
