"""One broken order or cancellation must not stop the fulfilment worker for the others.

The broken rows are made by hand in the real tables (as a bug or a bad migration would leave them),
next to good ones made through the API. The worker runs on the kit's scheduler: a broken row is
retried with a growing backoff and parked after the last attempt (switchboard_kit.schedule)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from switchboard_dev import testing
from switchboard_kit.schedule import ManualClock

from ..api.test_product_order import ORDERS, create
from ..conftest import BASE, run_worker

pytestmark = pytest.mark.asyncio


async def execute(app: FastAPI, sql: str, **params: Any) -> None:
    await testing.sql(app, sql, **params)


async def order_row(app: FastAPI, id: str) -> Any:
    (row,) = await testing.sql(
        app,
        "SELECT state, version, next_action_at, attempts, last_error, now() AS now FROM product_order WHERE id = :id",
        id=id,
    )
    return SimpleNamespace(**row)


async def break_order(app: FastAPI, id: str) -> None:
    """inProgress with every item rejected: fulfilment derives `rejected`, which inProgress cannot reach
    (InvalidTransition), and the row is due before any other."""
    await execute(
        app,
        """
        UPDATE product_order SET
            doc = jsonb_set(doc::jsonb, '{productOrderItem}', (
                SELECT jsonb_agg(jsonb_set(item, '{state}', '"rejected"'))
                FROM jsonb_array_elements(doc::jsonb -> 'productOrderItem') AS item)),
            next_action_at = now() - interval '1 hour'
        WHERE id = :id
        """,
        id=id,
    )


async def test_a_broken_order_does_not_stop_the_others(
    client: httpx.AsyncClient, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    bad = await create(client)
    good = await create(client)
    await break_order(app, bad["id"])
    bad_before = await order_row(app, bad["id"])

    with caplog.at_level(logging.ERROR, logger="switchboard.schedule"):
        assert await run_worker(app) == 1

    done = (await client.get(f"{ORDERS}/{good['id']}")).json()
    assert done["state"] == "completed"
    bad_after = await order_row(app, bad["id"])
    assert (bad_after.state, bad_after.version) == ("inProgress", bad_before.version)  # rolled back
    # Out of the due set for a while, not retried on every poll; the failure is counted and kept.
    assert bad_after.next_action_at > bad_after.now + timedelta(seconds=30)
    assert bad_after.attempts == 1 and bad_after.last_error.startswith("InvalidTransition")
    assert any(bad["id"] in r.getMessage() and r.exc_info for r in caplog.records)

    assert await run_worker(app) == 0
    assert (await order_row(app, bad["id"])).version == bad_before.version


async def test_a_broken_cancellation_does_not_stop_the_others(
    client: httpx.AsyncClient, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    orders = [await create(client) for _ in range(2)]
    cancels = []
    for order in orders:
        response = await client.post(f"{BASE}/cancelProductOrder", json={"productOrder": {"id": order["id"]}})
        assert response.status_code == 201, response.text
        cancels.append(response.json())
    # The first cancellation's order has a state the lifecycle does not know.
    await execute(
        app,
        "UPDATE product_order SET doc = jsonb_set(doc::jsonb, '{state}', '\"bogus\"') WHERE id = :id",
        id=orders[0]["id"],
    )
    await execute(
        app,
        "UPDATE cancel_product_order SET next_action_at = now() - interval '1 hour' WHERE id = :id",
        id=cancels[0]["id"],
    )

    with caplog.at_level(logging.ERROR, logger="switchboard.schedule"):
        assert await run_worker(app) == 1
    assert (await client.get(f"{ORDERS}/{orders[1]['id']}")).json()["state"] == "pendingCancellation"
    assert any(cancels[0]["id"] in r.getMessage() for r in caplog.records)

    (found,) = await testing.sql(
        app,
        "SELECT state, version, next_action_at, now() AS now FROM cancel_product_order WHERE id = :id",
        id=cancels[0]["id"],
    )
    row = SimpleNamespace(**found)
    assert (row.state, row.version) == ("inProgress", 1)
    assert isinstance(row.next_action_at, datetime) and row.next_action_at > row.now + timedelta(seconds=30)

    await run_worker(app)
    assert (await client.get(f"{ORDERS}/{orders[1]['id']}")).json()["state"] == "cancelled"


async def test_a_broken_order_backs_off_longer_each_time_then_is_parked(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    bad = await create(client)
    await break_order(app, bad["id"])
    scheduler = app.state.scheduler
    clock = scheduler.clock = ManualClock((await order_row(app, bad["id"])).now)
    (backoff,) = {work.backoff for work in scheduler.due}

    waits = []
    while (row := await order_row(app, bad["id"])).next_action_at is not None:
        clock.advance(max(row.next_action_at - clock.now(), timedelta(0)))
        assert await run_worker(app) == 0
        row = await order_row(app, bad["id"])
        if row.next_action_at is not None:
            waits.append(row.next_action_at - clock.now())

    assert waits == [backoff.delay(n) for n in range(1, backoff.max_attempts)]
    assert waits[1] == 2 * waits[0] and waits[-1] == backoff.longest
    assert (row.state, row.attempts) == ("inProgress", backoff.max_attempts)  # parked, with its error
    assert row.last_error.startswith("InvalidTransition")
