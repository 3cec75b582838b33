"""Payment use cases: the domain hooks the kit calls for payment and refund, and reconciliation.

Nothing here commits or sees a connection: each method works in the unit of work it is given. The
gateway is called inside the request's unit of work, so a retried request with the same
``Idempotency-Key`` waits for the first one (the kit's lock on the key) and replays its answer
instead of charging again; and every gateway call carries its own idempotency key (the payment's
id, ``<id>:capture``, the refund's id), so reconciliation can ask again without charging twice.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from switchboard_kit.errors import BadRequest, Conflict, NotFound, UnprocessableEntity
from switchboard_kit.events import format_datetime
from switchboard_kit.money import Money, currency
from switchboard_kit.resource import Change
from switchboard_kit.schedule import Clock, SystemClock
from switchboard_kit.store import Stored, UnitOfWork

from . import events
from .gateway import Charge, Gateway, GatewayResult, GatewayTimeout, method_token
from .models import payment, refund
from .states import COUNTED_REFUND_STATES, Status, move, start

# Attributes the server owns: dropped from a POST.
SERVER_OWNED = ("id", "href", "status", "statusDate", "statusReason", "paymentDate", "authorizationCode")
REFUND_SERVER_OWNED = (
    "id",
    "href",
    "status",
    "statusDate",
    "statusReason",
    "refundDate",
    "authorizationCode",
)

EventList = list[tuple[str, dict[str, Any]]]


def party_ids(doc: Mapping[str, Any]) -> list[str]:
    """Whose payment it is: the payer's party (a customer sees only its own payments)."""
    payer = doc.get("payer")
    return [payer["id"]] if isinstance(payer, Mapping) and isinstance(payer.get("id"), str) else []


def payment_columns(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": doc["status"], "account_id": doc["account"]["id"], "party_ids": party_ids(doc)}


def refund_columns(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": doc["status"], "account_id": doc["account"]["id"], "payment_id": doc["payment"]["id"]}


def read_money(doc: Mapping[str, Any], name: str, problems: list[str]) -> Money | None:
    """The TMF Money at ``doc[name]``: None when absent or an empty object (the conformance kit sends
    ``{}``); a problem when it lacks unit or value, names no ISO 4217 currency, is not positive or has
    more decimals than its currency allows."""
    raw = doc.get(name)
    if not isinstance(raw, Mapping) or not raw:
        return None
    unit, value = raw.get("unit"), raw.get("value")
    if unit is None or value is None:
        problems.append(f"{name} needs both unit and value")
        return None
    try:
        money = Money.of(value, currency(unit))
    except BadRequest:
        problems.append(f"{name}.unit {str(unit)[:20]!r} is not an ISO 4217 currency code")
        return None
    except ValueError:
        problems.append(f"{name}.value is not a number")
        return None
    if money.amount <= 0:
        problems.append(f"{name}.value must be greater than zero")
    elif money.rounded().amount != money.amount:
        problems.append(
            f"{name}.value {money.amount} has more decimals than {money.currency.code} allows "
            f"({money.currency.minor_units})"
        )
    return money


def _same_currency(amounts: Mapping[str, Money | None], problems: list[str]) -> str | None:
    codes = {name: m.currency.code for name, m in amounts.items() if m is not None}
    if len(set(codes.values())) > 1:
        problems.append("amounts in different currencies: " + ", ".join(f"{n} {c}" for n, c in codes.items()))
        return None
    return next(iter(codes.values()), None)


def charge_amount(doc: Mapping[str, Any]) -> Money | None:
    """What to charge for a payment document: ``totalAmount`` (taxes included), else ``amount`` plus
    ``taxAmount``; None when it names no amount. 400 listing every problem of its amounts."""
    problems: list[str] = []
    amounts = {name: read_money(doc, name, problems) for name in ("totalAmount", "amount", "taxAmount")}
    _same_currency(amounts, problems)
    total, net, tax = amounts["totalAmount"], amounts["amount"], amounts["taxAmount"]
    if not problems and total is not None and net is not None and tax is not None and net + tax != total:
        problems.append(f"amount ({net}) plus taxAmount ({tax}) is not totalAmount ({total})")
    charged = total if total is not None else (net + tax if net is not None and tax is not None else net)
    items = doc.get("paymentItem") or []
    allocated: list[Money] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        item_problems: list[str] = []
        money = read_money(item, "amount", item_problems)
        problems += [f"paymentItem[{index}].{p}" for p in item_problems]
        if money is not None and not item_problems:
            if charged is not None and money.currency != charged.currency:
                problems.append(
                    f"paymentItem[{index}].amount is in {money.currency.code}, the payment in {charged.currency.code}"
                )
            else:
                allocated.append(money)
    if not problems and charged is not None and allocated:
        spread = sum((m.amount for m in allocated), Decimal(0))
        if spread > charged.amount:
            problems.append(f"paymentItem amounts add up to {spread}, more than the payment's {charged}")
    if problems:
        raise BadRequest("Invalid amount", "; ".join(problems))
    return charged


class PaymentService:
    """The domain hooks of payment and refund, and the reconciliation steps."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        base_url: str,
        gateway_timeout: float,
        reconcile_delay: float,
        clock: Clock | None = None,
    ) -> None:
        self.gateway = gateway
        self.base_url = base_url
        self.gateway_timeout = gateway_timeout
        self.reconcile_delay = timedelta(seconds=reconcile_delay)
        self.clock: Clock = clock or SystemClock()

    def _now(self) -> tuple[datetime, str]:
        now = self.clock.now()
        # The indexed column holds exactly what the document says (millisecond precision).
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        return now, format_datetime(now)

    async def _call(self, call: Awaitable[GatewayResult]) -> GatewayResult | None:
        """A gateway call's answer, or None when none came in time."""
        try:
            return await asyncio.wait_for(call, self.gateway_timeout)
        except (GatewayTimeout, TimeoutError):
            return None

    def _move(self, doc: dict[str, Any], target: Status, stamp: str, changes: EventList, event: str) -> None:
        if move(doc, target, stamp):
            changes.append((event, copy.deepcopy(doc)))

    # ----------------------------------------------------------------- payment

    async def create_payment(self, uow: UnitOfWork, doc: dict[str, Any]) -> Change:
        """Takes a payment: authorized and captured through the gateway, denied, failed, or (no answer
        in time) left pendingAuthorization for reconciliation."""
        amount = charge_amount(doc)
        now, stamp = self._now()
        doc["paymentDate"] = stamp
        start(doc, stamp)
        changes: EventList = [("PaymentCreateEvent", copy.deepcopy(doc))]
        columns: dict[str, Any] = {"payment_date": now, "next_action_at": None}
        method = doc.get("paymentMethod") or {}
        if amount is None or method_token(method) is None:
            # Accepted as the conformance kit sends it (empty totalAmount or paymentMethod), never charged.
            doc["statusReason"] = "nothing to charge: " + (
                "no amount" if amount is None else "no payment method the gateway can use"
            )
            self._move(doc, Status.FAILED, stamp, changes, "PaymentStateChangeEvent")
            return Change(doc, columns, changes, at=now)
        # The amount charged, taxes included, when the client gave it as amount and taxAmount.
        if not doc.get("totalAmount"):
            doc["totalAmount"] = amount.to_tmf()
        columns["currency"] = amount.currency.code
        charge = Charge(key=doc["id"], amount=amount.amount, currency=amount.currency.code, method=method)
        result = await self._call(self.gateway.authorize(charge))
        await self._advance_payment(doc, result, amount, columns, changes)
        return Change(doc, columns, changes, at=now)

    async def _advance_payment(
        self,
        doc: dict[str, Any],
        authorized: GatewayResult | None,
        amount: Money,
        columns: dict[str, Any],
        changes: EventList,
    ) -> None:
        """Applies the gateway's answer to an authorization (None: no answer) and captures an approved
        one; sets when reconciliation looks at it next (``next_action_at``)."""
        now, stamp = self._now()
        columns["next_action_at"] = None
        event = "PaymentStateChangeEvent"
        if Status(doc["status"]) == Status.PENDING_AUTHORIZATION:
            if authorized is None or authorized.outcome == "pending":
                columns["next_action_at"] = now + self.reconcile_delay
                return
            if authorized.outcome == "declined":
                doc["statusReason"] = authorized.reason or "declined"
                self._move(doc, Status.DENIED, stamp, changes, event)
                return
            if authorized.outcome == "not_found":
                doc["statusReason"] = "the gateway never received the authorization; nothing was charged"
                self._move(doc, Status.FAILED, stamp, changes, event)
                return
            doc["authorizationCode"] = authorized.authorization_code
            self._move(doc, Status.AUTHORIZED, stamp, changes, event)
        if Status(doc["status"]) != Status.AUTHORIZED:
            return
        captured = await self._call(
            self.gateway.capture(
                f"{doc['id']}:capture", doc["authorizationCode"], amount.amount, amount.currency.code
            )
        )
        if captured is None or captured.outcome == "pending":
            columns["next_action_at"] = now + self.reconcile_delay
            return
        if captured.outcome != "approved":
            doc["statusReason"] = captured.reason or f"capture {captured.outcome}"
            self._move(doc, Status.FAILED, stamp, changes, event)
            return
        self._move(doc, Status.CAPTURED, stamp, changes, event)
        columns["captured_amount"] = amount.amount
        columns["currency"] = amount.currency.code

    async def reconcile_payment(self, uow: UnitOfWork, row: Stored) -> None:
        """Asks the gateway again about a payment whose answer was unknown (due work)."""
        doc = copy.deepcopy(row.doc)
        status = Status(doc["status"])
        amount = charge_amount(doc)
        columns: dict[str, Any] = {}
        changes: EventList = []
        if amount is None or status not in (Status.PENDING_AUTHORIZATION, Status.AUTHORIZED):
            await uow.set_columns(payment, row.id, {"next_action_at": None})
            return
        authorized = None
        if status == Status.PENDING_AUTHORIZATION:
            authorized = await self._call(self.gateway.lookup(doc["id"]))
        await self._advance_payment(doc, authorized, amount, columns, changes)
        if not changes:
            await uow.set_columns(payment, row.id, {"next_action_at": columns["next_action_at"]})
            return
        await uow.save(
            payment,
            row,
            doc,
            columns={**payment_columns(doc), **columns},
            events=events.PAYMENT.rows(changes),
        )

    # ------------------------------------------------------------------ refund

    async def create_refund(self, uow: UnitOfWork, doc: dict[str, Any]) -> Change:
        """Refunds part or all of a captured payment: never more than was captured minus what its other
        refunds (not denied or failed) take, however many arrive at once (its row is locked)."""
        ref = doc.get("payment") or {}
        payment_id = ref.get("id")
        if not isinstance(payment_id, str) or not payment_id:
            raise BadRequest(
                "Missing payment.id", "A refund names the captured payment it refunds in payment.id"
            )
        problems: list[str] = []
        requested = read_money(doc, "totalAmount", problems) or read_money(doc, "amount", problems)
        if problems:
            raise BadRequest("Invalid amount", "; ".join(problems))
        paid = await uow.get(payment, payment_id, for_update=True)
        if paid is None:
            raise NotFound("Payment not found", f"No payment with id {payment_id} to refund")
        if paid.doc.get("status") != Status.CAPTURED:
            raise Conflict(
                "Payment not captured",
                f"Payment {payment_id} is {paid.doc.get('status')}; only a captured payment is refunded",
            )
        if doc["account"]["id"] != paid.columns["account_id"]:
            raise BadRequest(
                "Account mismatch",
                f"Payment {payment_id} was made on account {paid.columns['account_id']}, not {doc['account']['id']}",
            )
        code = paid.columns["currency"]
        captured = Money(Decimal(paid.columns["captured_amount"]), currency(code))
        counted = [s.value for s in COUNTED_REFUND_STATES]
        rows = await uow.fetch(
            select(func.coalesce(func.sum(refund.c.amount), 0).label("n")).where(
                refund.c.payment_id == payment_id, refund.c.status.in_(counted)
            )
        )
        remaining = captured - Money(Decimal(rows[0]["n"]), captured.currency)
        if requested is None:
            requested = remaining
            doc["totalAmount"] = remaining.to_tmf()
        if requested.currency != captured.currency:
            raise BadRequest(
                "Currency mismatch",
                f"Payment {payment_id} was in {code}, the refund is in {requested.currency.code}",
            )
        if requested.amount <= 0 or remaining < requested:
            raise UnprocessableEntity(
                "Refund exceeds the refundable amount",
                f"Payment {payment_id} captured {captured.rounded()}; {remaining.rounded()} of it can still be "
                f"refunded, not {requested}",
            )
        doc["payment"] = {**ref, "href": f"{self.base_url}/payment/{payment_id}", "@referredType": "Payment"}
        now, stamp = self._now()
        doc["refundDate"] = stamp
        start(doc, stamp)
        changes: EventList = [("RefundCreateEvent", copy.deepcopy(doc))]
        columns: dict[str, Any] = {"refund_date": now, "amount": requested.amount, "next_action_at": None}
        result = await self._call(
            self.gateway.refund(doc["id"], paid.doc["authorizationCode"], requested.amount, code)
        )
        self._advance_refund(doc, result, columns, changes)
        return Change(doc, columns, changes, at=now)

    def _advance_refund(
        self, doc: dict[str, Any], result: GatewayResult | None, columns: dict[str, Any], changes: EventList
    ) -> None:
        now, stamp = self._now()
        columns["next_action_at"] = None
        event = "RefundStateChangeEvent"
        if result is None or result.outcome == "pending":
            columns["next_action_at"] = now + self.reconcile_delay
        elif result.outcome == "declined":
            doc["statusReason"] = result.reason or "declined"
            self._move(doc, Status.DENIED, stamp, changes, event)
        elif result.outcome == "not_found":
            doc["statusReason"] = "the gateway never received the refund; nothing was paid back"
            self._move(doc, Status.FAILED, stamp, changes, event)
        else:
            doc["authorizationCode"] = result.authorization_code
            self._move(doc, Status.AUTHORIZED, stamp, changes, event)
            self._move(doc, Status.CAPTURED, stamp, changes, event)

    async def reconcile_refund(self, uow: UnitOfWork, row: Stored) -> None:
        """Asks the gateway again about a refund whose answer was unknown (due work)."""
        doc = copy.deepcopy(row.doc)
        if Status(doc["status"]) != Status.PENDING_AUTHORIZATION:
            await uow.set_columns(refund, row.id, {"next_action_at": None})
            return
        columns: dict[str, Any] = {}
        changes: EventList = []
        self._advance_refund(doc, await self._call(self.gateway.lookup(doc["id"])), columns, changes)
        if not changes:
            await uow.set_columns(refund, row.id, {"next_action_at": columns["next_action_at"]})
            return
        await uow.save(
            refund, row, doc, columns={**refund_columns(doc), **columns}, events=events.REFUND.rows(changes)
        )
