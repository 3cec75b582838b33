"""The payment gateway seam: what the service asks of a gateway, and a simulated one.

Every call carries an idempotency key; a gateway that gets a key again answers what it answered the
first time and charges nothing more. The service uses the payment's id to authorize,
``<payment id>:capture`` to capture and the refund's id to refund, and asks again with the same key
after a timeout (reconciliation), so a payment is never charged twice.

**The simulated gateway** (the default adapter) behaves like a card processor's test mode. The
method's *token* is ``paymentMethod.token`` (``tokenizedCard``), ``bankAccount.accountNumber`` or
``accountNumber`` / ``iban`` (``bankAccountDebit``), ``code`` (``voucher``), the method's ``id`` for a
stored method, and ``cash`` for ``cash``. These test tokens (card tokens, or bank accounts ending in
the same words) answer:

=========================  =====================================================================
``tok_decline``            declined: ``card_declined`` (the payment is ``denied``)
``tok_insufficient_funds`` declined: ``insufficient_funds`` (``denied``)
``tok_timeout``            no answer in time, and the gateway never processes the request
                           (a lookup says ``not_found``: the payment ``failed``, nothing charged)
``tok_late_success``       no answer in time, but the gateway approves it later: lookups say
                           ``pending`` for ``late_success_seconds``, then ``approved``
anything else              approved
=========================  =====================================================================

``DE00DECLINE``, ``DE00INSUFFICIENTFUNDS``, ``DE00TIMEOUT`` and ``DE00LATESUCCESS`` are the bank
accounts that answer the same. Every call waits ``latency`` seconds first. The simulated gateway keeps
its records in memory (a real one keeps them for you): its ``authorizations`` counts the charges it
made, which tests compare with the payments stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol

from switchboard_kit.schedule import Clock, SystemClock

Outcome = Literal["approved", "declined", "pending", "not_found"]


class GatewayTimeout(Exception):
    """The gateway did not answer in time: what it did with the request is unknown."""


@dataclasses.dataclass(frozen=True)
class GatewayResult:
    """A gateway's answer. ``pending``: it has the request and has not finished it (ask again later);
    ``not_found``: it never had it (only from :meth:`Gateway.lookup`)."""

    outcome: Outcome
    authorization_code: str | None = None
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class Charge:
    """An amount to authorize: in ``currency``, exact in its minor unit, with the method's details."""

    key: str  # the idempotency key: the same key is the same charge
    amount: Decimal
    currency: str
    method: Mapping[str, Any]  # the TMF paymentMethod as the client sent it


class Gateway(Protocol):
    """What the payment service asks of a payment gateway. Each call is idempotent by ``key``.
    A call that gets no answer in time raises :class:`GatewayTimeout`."""

    async def authorize(self, charge: Charge) -> GatewayResult:
        """Reserves ``charge.amount`` on the method: approved (with an authorization code) or declined."""
        ...

    async def capture(
        self, key: str, authorization_code: str, amount: Decimal, currency: str
    ) -> GatewayResult:
        """Takes an authorized amount."""
        ...

    async def refund(
        self, key: str, authorization_code: str, amount: Decimal, currency: str
    ) -> GatewayResult:
        """Pays back part or all of a captured amount."""
        ...

    async def lookup(self, key: str) -> GatewayResult:
        """What became of the request sent with ``key`` (after a timeout)."""
        ...


def method_token(method: Mapping[str, Any]) -> str | None:
    """The token the simulated gateway reads from a TMF paymentMethod (see the module docstring)."""
    kind = method.get("@type")
    if kind == "cash":
        return "cash"
    for name in ("token", "code", "accountNumber", "iban"):
        value = method.get(name)
        if isinstance(value, str) and value:
            return value
    bank = method.get("bankAccount")
    if isinstance(bank, Mapping):
        for name in ("accountNumber", "iban"):
            value = bank.get(name)
            if isinstance(value, str) and value:
                return value
    ident = method.get("id")
    return ident if isinstance(ident, str) and ident else None


DECLINE = "decline"
INSUFFICIENT_FUNDS = "insufficient_funds"
TIMEOUT = "timeout"
LATE_SUCCESS = "late_success"


def behaviour_of(token: str) -> str | None:
    """Which documented test behaviour ``token`` asks for, if any."""
    normal = token.lower().replace("_", "")
    for behaviour in (INSUFFICIENT_FUNDS, LATE_SUCCESS, TIMEOUT, DECLINE):
        if normal.endswith(behaviour.replace("_", "")):
            return behaviour
    return None


@dataclasses.dataclass
class _Record:
    operation: str
    result: GatewayResult
    amount: Decimal
    currency: str
    visible_at: datetime | None = None  # a late success: pending until then


class SimulatedGateway:
    """An in-memory gateway with documented test tokens (module docstring)."""

    def __init__(
        self, *, latency: float = 0.0, late_success_after: float = 5.0, clock: Clock | None = None
    ) -> None:
        self.latency = latency
        self.late_success_after = timedelta(seconds=late_success_after)
        self.clock: Clock = clock or SystemClock()
        self.records: dict[str, _Record] = {}
        self.calls: list[tuple[str, str]] = []  # (operation, key), every call in order
        self.authorizations = 0  # authorizations made (charges), never counting a replayed key
        self.refunds = 0
        self._codes = itertools.count(1)
        self._lock = asyncio.Lock()

    async def _wait(self) -> None:
        if self.latency > 0:
            await asyncio.sleep(self.latency)

    def _code(self) -> str:
        return f"SIM-{next(self._codes):08d}"

    async def authorize(self, charge: Charge) -> GatewayResult:
        self.calls.append(("authorize", charge.key))
        await self._wait()
        async with self._lock:
            known = self.records.get(charge.key)
            if known is not None:
                return self._answer(known)
            token = method_token(charge.method) or ""
            behaviour = behaviour_of(token)
            if behaviour == TIMEOUT:
                raise GatewayTimeout(f"no answer for {charge.key}")
            if behaviour in (DECLINE, INSUFFICIENT_FUNDS):
                reason = "card_declined" if behaviour == DECLINE else "insufficient_funds"
                record = _Record(
                    "authorize", GatewayResult("declined", reason=reason), charge.amount, charge.currency
                )
                self.records[charge.key] = record
                return record.result
            self.authorizations += 1
            record = _Record(
                "authorize", GatewayResult("approved", self._code()), charge.amount, charge.currency
            )
            self.records[charge.key] = record
            if behaviour == LATE_SUCCESS:
                record.visible_at = self.clock.now() + self.late_success_after
                raise GatewayTimeout(f"no answer for {charge.key} (it will be approved later)")
            return record.result

    def _answer(self, record: _Record) -> GatewayResult:
        if record.visible_at is not None and self.clock.now() < record.visible_at:
            return GatewayResult("pending")
        return record.result

    async def capture(
        self, key: str, authorization_code: str, amount: Decimal, currency: str
    ) -> GatewayResult:
        self.calls.append(("capture", key))
        await self._wait()
        async with self._lock:
            known = self.records.get(key)
            if known is None:
                known = _Record("capture", GatewayResult("approved", authorization_code), amount, currency)
                self.records[key] = known
            return known.result

    async def refund(
        self, key: str, authorization_code: str, amount: Decimal, currency: str
    ) -> GatewayResult:
        self.calls.append(("refund", key))
        await self._wait()
        async with self._lock:
            known = self.records.get(key)
            if known is None:
                self.refunds += 1
                known = _Record("refund", GatewayResult("approved", self._code()), amount, currency)
                self.records[key] = known
            return known.result

    async def lookup(self, key: str) -> GatewayResult:
        self.calls.append(("lookup", key))
        await self._wait()
        known = self.records.get(key)
        if known is None:
            return GatewayResult("not_found")
        return self._answer(known)
