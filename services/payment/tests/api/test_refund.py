"""Refunds: against a captured payment, never more than is left of it, with their own events."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from payment.gateway import SimulatedGateway
from payment.samples import card_payment, refund_of

from ..conftest import REFUNDS, assert_tmf_error, count, outbox
from .test_payment import pay

pytestmark = pytest.mark.asyncio


async def refund(client: httpx.AsyncClient, body: dict[str, object]) -> dict[str, object]:
    response = await client.post(REFUNDS, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_partial_refund_is_captured_and_leaves_the_rest(
    client: httpx.AsyncClient, app: FastAPI, gateway: SimulatedGateway
) -> None:
    paid = await pay(client, card_payment(value=30))
    first = await refund(client, refund_of(paid, 10.5))
    assert first["status"] == "captured"
    assert first["payment"]["href"] == paid["href"]
    assert first["refundDate"].endswith("Z")
    assert gateway.refunds == 1
    # Without an amount: all that is left.
    rest = await refund(client, refund_of(paid))
    assert rest["totalAmount"] == {"unit": "EUR", "value": 19.5}
    # Nothing is left now.
    error = assert_tmf_error(await client.post(REFUNDS, json=refund_of(paid, 0.01)), 422)
    assert "0.00 EUR of it can still be refunded" in error["message"]
    assert await count(app, "refund") == 2
    events = [(r["topic"], r["event_type"]) for r in await outbox(app) if r["topic"] == "tmf676.refund"]
    assert (
        events
        == [
            ("tmf676.refund", "RefundCreateEvent"),
            ("tmf676.refund", "RefundStateChangeEvent"),
            ("tmf676.refund", "RefundStateChangeEvent"),
        ]
        * 2
    )


async def test_an_over_refund_is_422_and_stores_nothing(
    client: httpx.AsyncClient, app: FastAPI, gateway: SimulatedGateway
) -> None:
    paid = await pay(client, card_payment(value=20))
    before = await count(app, "outbox")
    assert_tmf_error(await client.post(REFUNDS, json=refund_of(paid, 20.01)), 422)
    assert await count(app, "refund") == 0
    assert await count(app, "outbox") == before
    assert gateway.refunds == 0


async def test_what_cannot_be_refunded(client: httpx.AsyncClient, app: FastAPI) -> None:
    denied = await pay(client, card_payment(token="tok_decline"))
    assert_tmf_error(await client.post(REFUNDS, json=refund_of(denied, 1)), 409)
    paid = await pay(client, card_payment(value=20))
    unknown = refund_of(paid, 1)
    unknown["payment"] = {"id": "no-such-payment"}
    assert_tmf_error(await client.post(REFUNDS, json=unknown), 404)
    no_payment = refund_of(paid, 1)
    del no_payment["payment"]
    assert_tmf_error(await client.post(REFUNDS, json=no_payment), 400)
    other_account = refund_of(paid, 1)
    other_account["account"] = {"id": "BA-SOMEONE-ELSE"}
    assert_tmf_error(await client.post(REFUNDS, json=other_account), 400)
    wrong_currency = refund_of(paid, 1)
    wrong_currency["totalAmount"] = {"unit": "USD", "value": 1}
    assert_tmf_error(await client.post(REFUNDS, json=wrong_currency), 400)
    too_precise = refund_of(paid, 1.001)
    assert_tmf_error(await client.post(REFUNDS, json=too_precise), 400)
    negative = refund_of(paid, -1)
    assert_tmf_error(await client.post(REFUNDS, json=negative), 400)
    assert await count(app, "refund") == 0
