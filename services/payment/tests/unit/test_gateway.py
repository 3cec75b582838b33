"""The simulated gateway's documented test tokens, and its idempotency by key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from payment.gateway import Charge, GatewayTimeout, SimulatedGateway, method_token
from switchboard_kit.schedule import ManualClock


def charge(token: str, key: str = "k1") -> Charge:
    return Charge(key, Decimal("10.00"), "EUR", {"@type": "tokenizedCard", "token": token})


@pytest.mark.asyncio
async def test_an_ordinary_token_is_approved_once_per_key() -> None:
    gateway = SimulatedGateway()
    first = await gateway.authorize(charge("tok_visa"))
    assert first.outcome == "approved" and first.authorization_code
    assert await gateway.authorize(charge("tok_visa")) == first
    assert gateway.authorizations == 1
    await gateway.authorize(charge("tok_visa", key="k2"))
    assert gateway.authorizations == 2


@pytest.mark.parametrize(
    ("token", "reason"), [("tok_decline", "card_declined"), ("tok_insufficient_funds", "insufficient_funds")]
)
@pytest.mark.asyncio
async def test_declines(token: str, reason: str) -> None:
    result = await SimulatedGateway().authorize(charge(token))
    assert (result.outcome, result.reason) == ("declined", reason)


@pytest.mark.asyncio
async def test_a_timeout_is_never_processed() -> None:
    gateway = SimulatedGateway()
    with pytest.raises(GatewayTimeout):
        await gateway.authorize(charge("tok_timeout"))
    assert (await gateway.lookup("k1")).outcome == "not_found"
    assert gateway.authorizations == 0


@pytest.mark.asyncio
async def test_a_late_success_is_pending_then_approved() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    gateway = SimulatedGateway(late_success_after=30, clock=clock)
    with pytest.raises(GatewayTimeout):
        await gateway.authorize(charge("tok_late_success"))
    assert (await gateway.lookup("k1")).outcome == "pending"
    clock.advance(timedelta(seconds=31))
    assert (await gateway.lookup("k1")).outcome == "approved"
    assert gateway.authorizations == 1


def test_method_tokens() -> None:
    assert method_token({"@type": "tokenizedCard", "token": "tok_x"}) == "tok_x"
    assert (
        method_token({"@type": "bankAccountDebit", "bankAccount": {"accountNumber": "DE00DECLINE"}})
        == "DE00DECLINE"
    )
    assert method_token({"@type": "voucher", "code": "V-1"}) == "V-1"
    assert method_token({"@type": "cash"}) == "cash"
    assert method_token({"id": "PM-1"}) == "PM-1"
    assert method_token({}) is None
