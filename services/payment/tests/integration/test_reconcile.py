"""Reconciliation: a payment (or refund) whose gateway answer is unknown stays pendingAuthorization, and
the scheduled job asks the gateway again, with the same idempotency key, until it knows. Time is the
scheduler's ManualClock, moved by the test; each pass is ``scheduler.tick``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from payment.app import create_app
from payment.gateway import SimulatedGateway
from payment.samples import card_payment, refund_of
from switchboard_dev import testing
from switchboard_kit.schedule import ManualClock

from ..conftest import PAYMENTS, REFUNDS, make_settings, outbox

pytestmark = pytest.mark.asyncio

RECONCILE_DELAY = 60  # seconds between two questions to the gateway
LATE_SUCCESS = 150  # when the gateway finishes a tok_late_success request


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def gateway(clock: ManualClock) -> SimulatedGateway:
    return SimulatedGateway(late_success_after=LATE_SUCCESS, clock=clock)


@pytest.fixture
def app(payment_db: str, gateway: SimulatedGateway, clock: ManualClock) -> FastAPI:
    settings = make_settings(payment_db, reconcile_delay_seconds=RECONCILE_DELAY)
    return create_app(settings, gateway=gateway, clock=clock)


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with testing.running(app) as client, testing.rolled_back(app):
        yield client


async def tick(app: FastAPI) -> int:
    return int(await app.state.scheduler.tick(app.state.runtime.store))


async def get(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_late_success_is_captured_once_when_the_gateway_knows(
    client: httpx.AsyncClient, app: FastAPI, gateway: SimulatedGateway, clock: ManualClock
) -> None:
    paid = (await client.post(PAYMENTS, json=card_payment(token="tok_late_success"))).json()
    url = f"{PAYMENTS}/{paid['id']}"
    assert paid["status"] == "pendingAuthorization"
    assert await tick(app) == 0  # not due yet: nothing asked
    assert [op for op, _ in gateway.calls] == ["authorize"]

    # Due, but the gateway is still processing it: asked, still pending, asked again later.
    for _ in range(2):
        clock.advance(timedelta(seconds=RECONCILE_DELAY))
        assert await tick(app) == 1
        assert (await get(client, url))["status"] == "pendingAuthorization"
    assert [op for op, _ in gateway.calls] == ["authorize", "lookup", "lookup"]

    clock.advance(timedelta(seconds=RECONCILE_DELAY))  # 180 s: the gateway has approved it
    assert await tick(app) == 1
    done = await get(client, url)
    assert done["status"] == "captured" and done["authorizationCode"].startswith("SIM-")
    assert gateway.authorizations == 1
    assert [op for op, _ in gateway.calls] == ["authorize", "lookup", "lookup", "lookup", "capture"]
    rows = [r for r in await outbox(app) if r["key"] == paid["id"]]
    assert [r["payload"]["event"]["payment"]["status"] for r in rows] == [
        "pendingAuthorization",
        "authorized",
        "captured",
    ]

    # Nothing is due any more: later passes ask nothing and charge nothing.
    clock.advance(timedelta(hours=2))
    assert await tick(app) == 0
    assert len(gateway.calls) == 5 and gateway.authorizations == 1
    # The captured payment can be refunded.
    assert (await client.post(REFUNDS, json=refund_of(done, 1))).status_code == 201


async def test_a_request_the_gateway_never_got_fails_without_a_charge(
    client: httpx.AsyncClient, app: FastAPI, gateway: SimulatedGateway, clock: ManualClock
) -> None:
    paid = (await client.post(PAYMENTS, json=card_payment(token="tok_timeout"))).json()
    assert paid["status"] == "pendingAuthorization"
    clock.advance(timedelta(seconds=RECONCILE_DELAY))
    assert await tick(app) == 1
    failed = await get(client, f"{PAYMENTS}/{paid['id']}")
    assert failed["status"] == "failed" and "nothing was charged" in failed["statusReason"]
    assert gateway.authorizations == 0
    (row,) = await testing.sql(app, "SELECT next_action_at FROM payment WHERE id = :id", id=paid["id"])
    assert row["next_action_at"] is None


async def test_a_refund_without_an_answer_is_reconciled_and_a_lost_one_frees_its_amount(
    client: httpx.AsyncClient, app: FastAPI, gateway: SimulatedGateway, clock: ManualClock
) -> None:
    paid = (await client.post(PAYMENTS, json=card_payment(value=50))).json()
    assert paid["status"] == "captured"
    # The gateway answers too slowly: the refund call is given up (it never reached the gateway).
    gateway.latency, app.state.payment_service.gateway_timeout = 0.2, 0.05
    lost = (await client.post(REFUNDS, json=refund_of(paid, 40))).json()
    assert lost["status"] == "pendingAuthorization"
    # While its answer is unknown, the refund's amount is held: only 10 can be refunded.
    gateway.latency, app.state.payment_service.gateway_timeout = 0.0, 2.0
    assert (await client.post(REFUNDS, json=refund_of(paid, 10.01))).status_code == 422
    clock.advance(timedelta(seconds=RECONCILE_DELAY))
    assert await tick(app) == 1
    assert (await get(client, f"{REFUNDS}/{lost['id']}"))["status"] == "failed"
    assert gateway.refunds == 0
    # Nothing was paid back, so all of it can be refunded again.
    again = await client.post(REFUNDS, json=refund_of(paid, 50))
    assert again.status_code == 201 and again.json()["status"] == "captured"
    assert gateway.refunds == 1
