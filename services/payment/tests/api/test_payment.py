"""Taking payments: states through the gateway, money rules, events, idempotent retries."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from payment.gateway import SimulatedGateway
from payment.samples import card_payment
from switchboard_dev import testing

from ..conftest import PAYMENTS, assert_tmf_error, count, outbox

pytestmark = pytest.mark.asyncio


async def pay(client: httpx.AsyncClient, body: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    response = await client.post(PAYMENTS, json=body or card_payment(), **kw)
    assert response.status_code == 201, response.text
    return dict(response.json())


class TestCreate:
    async def test_an_approved_card_is_captured(
        self, client: httpx.AsyncClient, gateway: SimulatedGateway
    ) -> None:
        response = await client.post(PAYMENTS, json=card_payment(value=49.99))
        assert response.status_code == 201, response.text
        paid = response.json()
        assert response.headers["Location"] == paid["href"]
        assert paid["href"] == f"http://payments.example{PAYMENTS}/{paid['id']}"
        assert paid["status"] == "captured"
        assert paid["authorizationCode"].startswith("SIM-")
        assert paid["totalAmount"] == {"unit": "EUR", "value": 49.99}
        assert paid["paymentDate"].endswith("Z") and paid["statusDate"].endswith("Z")
        assert gateway.authorizations == 1
        assert gateway.calls == [("authorize", paid["id"]), ("capture", f"{paid['id']}:capture")]
        assert (await client.get(f"{PAYMENTS}/{paid['id']}")).json() == paid

    @pytest.mark.parametrize(
        ("token", "reason"),
        [("tok_decline", "card_declined"), ("tok_insufficient_funds", "insufficient_funds")],
    )
    async def test_a_declined_card_is_denied(
        self, client: httpx.AsyncClient, gateway: SimulatedGateway, token: str, reason: str
    ) -> None:
        paid = await pay(client, card_payment(token=token))
        assert paid["status"] == "denied"
        assert paid["statusReason"] == reason
        assert "authorizationCode" not in paid
        assert gateway.authorizations == 0

    async def test_a_declining_bank_account_is_denied(self, client: httpx.AsyncClient) -> None:
        body = card_payment()
        body["paymentMethod"] = {"@type": "bankAccountDebit", "bankAccount": {"accountNumber": "DE00DECLINE"}}
        assert (await pay(client, body))["status"] == "denied"

    async def test_a_timeout_leaves_the_payment_pending_for_reconciliation(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        paid = await pay(client, card_payment(token="tok_timeout"))
        assert paid["status"] == "pendingAuthorization"
        (row,) = await testing.sql(
            app, "SELECT status, next_action_at FROM payment WHERE id = :id", id=paid["id"]
        )
        assert row["status"] == "pendingAuthorization" and row["next_action_at"] is not None

    async def test_the_kits_empty_method_and_amount_are_accepted_and_never_charged(
        self, client: httpx.AsyncClient, gateway: SimulatedGateway
    ) -> None:
        body = {"account": {"id": "15463151"}, "paymentMethod": {}, "totalAmount": {}}
        paid = await pay(client, body)
        assert paid["paymentMethod"] == {} and paid["totalAmount"] == {}
        assert paid["status"] == "failed"
        assert paid["statusReason"].startswith("nothing to charge")
        assert gateway.calls == []

    @pytest.mark.parametrize(
        ("amount", "problem"),
        [
            ({"unit": "EUR", "value": 0}, "greater than zero"),
            ({"unit": "EUR", "value": -5}, "greater than zero"),
            ({"unit": "EUR", "value": 10.001}, "more decimals than EUR allows (2)"),
            ({"unit": "JPY", "value": 100.5}, "more decimals than JPY allows (0)"),
            ({"unit": "XYZ", "value": 10}, "not an ISO 4217 currency"),
            ({"unit": "EUR"}, "needs both unit and value"),
        ],
    )
    async def test_bad_amounts_are_400_and_store_nothing(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        gateway: SimulatedGateway,
        amount: dict[str, Any],
        problem: str,
    ) -> None:
        body = card_payment()
        body["totalAmount"] = amount
        error = assert_tmf_error(await client.post(PAYMENTS, json=body), 400)
        assert problem in error["message"]
        assert await count(app, "payment") == 0
        assert await count(app, "outbox") == 0
        assert gateway.calls == []

    async def test_three_decimals_are_fine_for_a_currency_that_has_them(
        self, client: httpx.AsyncClient
    ) -> None:
        paid = await pay(client, card_payment(value=10.125, unit="BHD"))
        assert paid["status"] == "captured" and paid["totalAmount"]["value"] == 10.125

    async def test_amounts_must_agree(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        body = card_payment(value=10)
        body["amount"] = {"unit": "EUR", "value": 8}
        body["taxAmount"] = {"unit": "EUR", "value": 1}
        assert (
            "is not totalAmount" in assert_tmf_error(await client.post(PAYMENTS, json=body), 400)["message"]
        )
        body["taxAmount"] = {"unit": "USD", "value": 2}
        assert (
            "different currencies" in assert_tmf_error(await client.post(PAYMENTS, json=body), 400)["message"]
        )
        body["taxAmount"] = {"unit": "EUR", "value": 2}
        assert (await pay(client, body))["status"] == "captured"

    async def test_allocations_may_not_exceed_the_payment(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        body = card_payment(value=10)
        body["paymentItem"] = [
            {"item": {"id": "BILL-1"}, "amount": {"unit": "EUR", "value": 6}},
            {"item": {"id": "BILL-2"}, "amount": {"unit": "EUR", "value": 4.001}},
            {"item": {"id": "BILL-3"}, "amount": {"unit": "USD", "value": 1}},
        ]
        message = assert_tmf_error(await client.post(PAYMENTS, json=body), 400)["message"]
        # Every problem, each naming its item.
        assert "paymentItem[1].amount.value 4.001 has more decimals" in message
        assert "paymentItem[2].amount is in USD" in message
        body["paymentItem"] = [
            *body["paymentItem"][:1],
            {"item": {"id": "BILL-2"}, "amount": {"unit": "EUR", "value": 4.01}},
        ]
        assert (
            "more than the payment's"
            in assert_tmf_error(await client.post(PAYMENTS, json=body), 400)["message"]
        )
        assert await count(app, "payment") == 0
        body["paymentItem"][1]["amount"]["value"] = 4
        assert (await pay(client, body))["paymentItem"] == body["paymentItem"]

    async def test_server_owned_attributes_are_the_servers(self, client: httpx.AsyncClient) -> None:
        body = card_payment(token="tok_decline")
        body.update(status="captured", authorizationCode="FORGED", paymentDate="2001-01-01T00:00:00Z")
        paid = await pay(client, body)
        assert paid["status"] == "denied"
        assert "authorizationCode" not in paid
        assert not paid["paymentDate"].startswith("2001")


class TestEvents:
    async def test_create_then_one_state_change_per_step(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        paid = await pay(client)
        rows = await outbox(app)
        assert [(r["topic"], r["key"], r["event_type"]) for r in rows] == [
            ("tmf676.payment", paid["id"], "PaymentCreateEvent"),
            ("tmf676.payment", paid["id"], "PaymentStateChangeEvent"),
            ("tmf676.payment", paid["id"], "PaymentStateChangeEvent"),
        ]
        states = [r["payload"]["event"]["payment"]["status"] for r in rows]
        assert states == ["pendingAuthorization", "authorized", "captured"]
        assert rows[-1]["payload"]["event"]["payment"] == paid

    async def test_a_declined_payment_is_created_then_denied(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        await pay(client, card_payment(token="tok_decline"))
        rows = await outbox(app)
        assert [r["payload"]["event"]["payment"]["status"] for r in rows] == [
            "pendingAuthorization",
            "denied",
        ]


class TestIdempotency:
    async def test_a_retry_returns_the_first_payment_and_charges_once(
        self, client: httpx.AsyncClient, app: FastAPI, gateway: SimulatedGateway
    ) -> None:
        headers = {"Idempotency-Key": "phone-call-17"}
        first = await client.post(PAYMENTS, json=card_payment(), headers=headers)
        again = await client.post(PAYMENTS, json=card_payment(), headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert await count(app, "payment") == 1
        assert gateway.authorizations == 1
        assert_tmf_error(await client.post(PAYMENTS, json=card_payment(value=1), headers=headers), 422)


class TestList:
    async def test_filters(self, client: httpx.AsyncClient) -> None:
        a = await pay(client, card_payment("BA-A", "CUST-A"))
        b = await pay(client, card_payment("BA-B", "CUST-B", token="tok_decline"))
        ids = lambda r: {p["id"] for p in r.json()}  # noqa: E731
        assert ids(await client.get(PAYMENTS, params={"account.id": "BA-A"})) == {a["id"]}
        assert ids(await client.get(PAYMENTS, params={"status": "denied"})) == {b["id"]}
        assert ids(await client.get(PAYMENTS, params={"href": b["href"]})) == {b["id"]}
        assert ids(await client.get(PAYMENTS, params={"payer.id": "CUST-A"})) == {a["id"]}
        assert_tmf_error(await client.get(f"{PAYMENTS}/45d7aa75-8458-4b33-b659-c3c1d6278c4c"), 404)
