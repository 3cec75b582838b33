"""Concurrent requests on real connections (no rolled-back test transaction, which would run them one at
a time): fifty retries of one payment charge once, and concurrent refunds never exceed the capture."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from payment.app import create_app
from payment.gateway import SimulatedGateway
from payment.samples import card_payment, refund_of
from switchboard_dev import testing

from ..conftest import PAYMENTS, REFUNDS, make_settings, migrated_database

pytestmark = pytest.mark.asyncio


@pytest.fixture
def own_db(pg_server_url: str) -> Iterator[str]:
    url = migrated_database(pg_server_url, "sb_payment_concurrency")
    yield url
    testing.drop_database(url)


@pytest.fixture
def gateway() -> SimulatedGateway:
    # Slow enough that the requests overlap while the first one waits for the gateway.
    return SimulatedGateway(latency=0.05)


@pytest_asyncio.fixture
async def live(own_db: str, gateway: SimulatedGateway) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(make_settings(own_db), gateway=gateway)
    async with testing.running(app) as client:
        yield app, client


async def test_fifty_concurrent_posts_with_one_key_make_one_payment_and_one_charge(
    live: tuple[FastAPI, httpx.AsyncClient], gateway: SimulatedGateway
) -> None:
    app, client = live
    headers = {"Idempotency-Key": "checkout-7f3a"}
    responses = await asyncio.gather(
        *(client.post(PAYMENTS, json=card_payment(value=25), headers=headers) for _ in range(50))
    )
    assert Counter(r.status_code for r in responses) == {201: 50}
    assert len({r.json()["id"] for r in responses}) == 1
    assert (await testing.sql(app, "SELECT count(*) AS n FROM payment"))[0]["n"] == 1
    assert gateway.authorizations == 1
    assert [op for op, _ in gateway.calls].count("authorize") == 1


async def test_concurrent_refunds_never_exceed_what_was_captured(
    live: tuple[FastAPI, httpx.AsyncClient], gateway: SimulatedGateway
) -> None:
    app, client = live
    paid = (await client.post(PAYMENTS, json=card_payment(value=100))).json()
    assert paid["status"] == "captured"
    responses = await asyncio.gather(*(client.post(REFUNDS, json=refund_of(paid, 15)) for _ in range(12)))
    # 6 x 15 = 90 fits in 100; a seventh would not.
    assert Counter(r.status_code for r in responses) == {201: 6, 422: 6}
    (row,) = await testing.sql(app, "SELECT count(*) AS n, sum(amount) AS total FROM refund")
    assert row["n"] == 6 and row["total"] == 90
    assert gateway.refunds == 6
