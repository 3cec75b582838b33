"""Billing use cases: the domain hooks the kit calls for each resource, charges from completed orders,
bill runs and bills on demand. Nothing here commits or sees a connection: each method works in the
unit of work it is given."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from switchboard_kit.errors import BadRequest
from switchboard_kit.events import utc_now
from switchboard_kit.ids import new_id
from switchboard_kit.money import Money, currency, json_number
from switchboard_kit.resource import Change
from switchboard_kit.store import Stored, UnitOfWork
from tmf_models import tmf678
from tmf_models._base import format_datetime  # the models' own writer: a PATCH re-validates to the same text

from . import domain, events
from .domain import BillState, OnDemandState, Period
from .models import (
    applied_customer_billing_rate,
    billing_account,
    customer_bill,
    customer_bill_on_demand,
    kit,
    recurring_charge,
)

log = logging.getLogger("billing")

# A client changes a bill's state only: every other attribute of a CustomerBill is the server's.
BILL_SERVER_OWNED = tuple(
    field.alias or name for name, field in tmf678.CustomerBill.model_fields.items() if name != "state"
)
ON_DEMAND_SERVER_OWNED = ("id", "href", "state", "lastUpdate", "customerBill")
# Identifiers that go into an indexed column.
MAX_ID_LENGTH = 255
# The name charges claim an order under in the kit's processed_event table: one order, one charging.
CHARGED_ORDERS = "billing-charged-orders"


def parse_datetime(value: str) -> datetime:
    return datetime.fromisoformat(value)


def party_ids(doc: Mapping[str, Any]) -> list[str]:
    parties = doc.get("relatedParty") or []
    return domain.ids(p.get("id") for p in parties if isinstance(p, dict))


def bill_columns(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "state": doc["state"],
        "account_id": doc["billingAccount"]["id"],
        "bill_date": parse_datetime(doc["billDate"]),
        "party_ids": party_ids(doc),
    }


def on_demand_columns(doc: dict[str, Any]) -> dict[str, Any]:
    return {"state": doc["state"]}


def rate_columns(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "is_billed": bool(doc.get("isBilled")),
        "account_id": doc["billingAccount"]["id"],
        "bill_id": (doc.get("bill") or {}).get("id"),
        "charge_date": parse_datetime(doc["date"]),
    }


def account_columns(doc: dict[str, Any]) -> dict[str, Any]:
    return {"status": doc["status"], "currency": doc["currency"], "bill_cycle_day": doc["billCycleDay"]}


def _stored(row: Mapping[str, Any]) -> Stored:
    columns = {k: v for k, v in row.items() if k not in ("id", "doc", "version")}
    return Stored(id=row["id"], doc=row["doc"], version=row["version"], columns=columns)


def _now_ms() -> datetime:
    now = utc_now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class BillingService:
    """The hooks of customerBill and customerBillOnDemand, the charging of orders and the bill runs."""

    def __init__(
        self,
        *,
        base_url: str,
        tax_rates: Mapping[str, Decimal],
        default_currency: str = "EUR",
        default_bill_cycle_day: int = 1,
        default_payment_terms_days: int = 14,
        default_tax_zone: str = "NL",
    ) -> None:
        if default_tax_zone not in tax_rates:
            raise ValueError(f"the default tax zone {default_tax_zone} is not in the tax rate table")
        if not 1 <= default_bill_cycle_day <= 28:
            raise ValueError("the default bill cycle day is 1 to 28")
        currency(default_currency)  # a known ISO 4217 code
        self.base_url = base_url
        self.tax_rates = dict(tax_rates)
        self.default_currency = default_currency
        self.default_bill_cycle_day = default_bill_cycle_day
        self.default_payment_terms_days = default_payment_terms_days
        self.default_tax_zone = default_tax_zone

    def href(self, resource: str, id: str) -> str:
        return f"{self.base_url}/{resource}/{id}"

    def account_ref(self, id: str) -> dict[str, Any]:
        return {"id": id, "href": self.href("billingAccount", id), "@referredType": "BillingAccount"}

    # ------------------------------------------------------------------ customerBill PATCH

    async def patch_bill(self, uow: UnitOfWork, stored: Stored, patched: dict[str, Any]) -> Change | None:
        """Only ``state`` changes, along the bill's state machine (409 otherwise)."""
        current = stored.doc
        changed = sorted(
            k for k in set(patched) | set(current) if k != "state" and patched.get(k) != current.get(k)
        )
        if changed:
            raise BadRequest("Read-only attribute", f"{changed[0][:60]} cannot be changed; only state can")
        step = domain.change_state(
            current.get("state"), patched.get("state"), stored.columns.get("held_from")
        )
        if step is None:
            return None
        now = _now_ms()
        doc = {**current, "state": str(step.state), "lastUpdate": format_datetime(now)}
        return Change(
            doc,
            columns={"held_from": None if step.held_from is None else str(step.held_from)},
            events=[("CustomerBillStateChangeEvent", doc)],
            at=now,
        )

    # ------------------------------------------------------------ customerBillOnDemand POST

    async def create_on_demand(self, uow: UnitOfWork, doc: dict[str, Any]) -> Change:
        """Accepts a request (inProgress); the scheduler makes its bill (:meth:`run_on_demand`)."""
        now = _now_ms()
        account = doc.get("billingAccount")
        account_id: str | None = None
        if isinstance(account, dict):  # the model made it an object with a string id
            account_id = str(account["id"])
            if len(account_id) > MAX_ID_LENGTH:
                raise BadRequest(
                    "Identifier too long", f"billingAccount.id: at most {MAX_ID_LENGTH} characters"
                )
            doc["billingAccount"] = {**account, **self.account_ref(account_id)}
        doc["state"] = str(OnDemandState.IN_PROGRESS)
        doc["lastUpdate"] = format_datetime(now)
        return Change(
            doc,
            columns={"account_id": account_id, "next_action_at": now},
            events=[("CustomerBillOnDemandCreateEvent", doc)],
            at=now,
        )

    async def run_on_demand(self, uow: UnitOfWork, row: Stored) -> None:
        """Makes the requested offCycle bill of the account's unbilled charges so far, or rejects the
        request with its reason (no account named, an unknown account, nothing to bill)."""
        request = dict(row.doc)
        now = _now_ms()
        account_id = row.columns.get("account_id")
        outcome: tuple[OnDemandState, str | None, dict[str, Any] | None]
        if row.doc.get("state") != OnDemandState.IN_PROGRESS:
            await uow.set_columns(customer_bill_on_demand, row.id, {"next_action_at": None})
            return
        if account_id is None:
            outcome = (OnDemandState.REJECTED, "The request names no billingAccount", None)
        else:
            bill, why = await self.bill_now(uow, account_id, at=now)
            outcome = (
                (OnDemandState.DONE, None, bill) if bill is not None else (OnDemandState.REJECTED, why, None)
            )
        state, reason, bill = outcome
        request["state"] = str(state)
        request["lastUpdate"] = format_datetime(now)
        if reason is not None:
            request["stateReason"] = reason  # extension attribute: why the request was rejected
        if bill is not None:
            request["customerBill"] = {
                "id": bill["id"],
                "href": bill["href"],
                "@referredType": "CustomerBill",
            }
        await uow.save(
            customer_bill_on_demand,
            row,
            request,
            columns={"state": request["state"], "next_action_at": None},
            events=events.ON_DEMAND.rows([("CustomerBillOnDemandStateChangeEvent", request)], at=now),
        )

    # ------------------------------------------------------------------------------ bills

    async def bill_now(
        self, uow: UnitOfWork, account_id: str, *, at: datetime, final_state: BillState = BillState.SENT
    ) -> tuple[dict[str, Any] | None, str | None]:
        """An offCycle bill of the account's unbilled charges up to ``at``, or why there is none."""
        await uow.lock(f"billing-account:{account_id}")
        account = await uow.get(billing_account, account_id)
        if account is None:
            return None, f"Unknown billing account {account_id[:MAX_ID_LENGTH]}"
        rates = await self.unbilled_rates(uow, account_id, upto=at)
        if not rates:
            return None, f"Nothing to bill on account {account_id}"
        start = min(parse_datetime(r.doc["date"]) for r in rates)
        period = {"startDateTime": format_datetime(start), "endDateTime": format_datetime(at)}
        bill = await self.issue_bill(
            uow, account, rates, run_type="offCycle", period=period, at=at, final_state=final_state
        )
        return bill, None

    async def hold(self, uow: UnitOfWork, bill_id: str) -> dict[str, Any] | None:
        """Puts a bill on hold (as a PATCH of its state to onHold does)."""
        stored = await uow.get(customer_bill, bill_id, for_update=True)
        if stored is None:
            return None
        change = await self.patch_bill(uow, stored, {**stored.doc, "state": str(BillState.ON_HOLD)})
        if change is None:
            return stored.doc
        await uow.save(
            customer_bill,
            stored,
            change.doc,
            columns={**bill_columns(change.doc), **change.columns},
            events=events.BILL.rows(change.events, at=change.at),
        )
        return change.doc

    async def unbilled_rates(self, uow: UnitOfWork, account_id: str, *, upto: datetime) -> list[Stored]:
        """The account's unbilled rates charged up to ``upto``, oldest first, locked."""
        t = applied_customer_billing_rate
        rows = await uow.fetch(
            select(t)
            .where(t.c.account_id == account_id, t.c.is_billed.is_(False), t.c.charge_date <= upto)
            .order_by(t.c.charge_date, t.c.id)
            .with_for_update()
        )
        return [_stored(r) for r in rows]

    async def issue_bill(
        self,
        uow: UnitOfWork,
        account: Stored,
        rates: Sequence[Stored],
        *,
        run_type: str,
        period: dict[str, str],
        at: datetime,
        cycle_key: str | None = None,
        next_bill_date: datetime | None = None,
        final_state: BillState = BillState.SENT,
    ) -> dict[str, Any]:
        """A bill of ``rates`` in ``final_state`` (passing new -> validated -> sent with their events),
        and the rates marked billed on it."""
        acct = account.doc
        unit = acct["currency"]
        totals = domain.bill_totals([r.doc for r in rates], unit)
        id = new_id()
        href = self.href("customerBill", id)
        stamp = format_datetime(at)
        due = Money.zero(unit) + totals.tax_included  # no credit or adjustment yet: amountDue = included
        bill: dict[str, Any] = {
            "id": id,
            "href": href,
            "@type": "CustomerBill",
            "billNo": f"{at:%Y%m}-{id[:8].upper()}",
            "billDate": stamp,
            "lastUpdate": stamp,
            "runType": run_type,
            "category": "normal",
            "billingAccount": self.account_ref(account.id),
            "billingPeriod": period,
            "paymentDueDate": format_datetime(domain.payment_due(at, int(acct["paymentTermsDays"]))),
            "taxExcludedAmount": totals.tax_excluded.to_tmf(),
            "taxItem": totals.tax_items,
            "taxIncludedAmount": totals.tax_included.to_tmf(),
            "amountDue": due.to_tmf(),
            "remainingAmount": (due if Money.zero(unit) <= due else Money.zero(unit)).to_tmf(),
            "billDocument": [
                {
                    "@type": "AttachmentRefOrValue",
                    "id": f"{id}-invoice",
                    "name": f"Invoice {at:%Y%m}-{id[:8].upper()}",
                    "attachmentType": "invoice",
                    "mimeType": "application/pdf",
                }
            ],
        }
        if acct.get("relatedParty"):
            bill["relatedParty"] = acct["relatedParty"]
        if next_bill_date is not None:
            bill["nextBillDate"] = format_datetime(next_bill_date)
        changes: list[tuple[str, dict[str, Any]]] = []
        for state in domain.ISSUE_PATH:
            snapshot = {**bill, "state": str(state)}
            changes.append(
                ("CustomerBillCreateEvent" if not changes else "CustomerBillStateChangeEvent", snapshot)
            )
            if state == final_state:
                break
        bill["state"] = str(final_state)
        columns = {**bill_columns(bill), "cycle_key": cycle_key}
        await uow.insert(customer_bill, bill, columns=columns, events=events.BILL.rows(changes, at=at))
        bill_ref = {"id": id, "href": href, "@referredType": "CustomerBill"}
        for rate in rates:
            doc = {**rate.doc, "isBilled": True, "bill": bill_ref}
            await uow.save(applied_customer_billing_rate, rate, doc, columns=rate_columns(doc))
        return bill

    # -------------------------------------------------------------------------- accounts

    def new_account(
        self,
        id: str,
        *,
        unit: str | None = None,
        parties: Sequence[Mapping[str, Any]] = (),
        name: str | None = None,
    ) -> dict[str, Any]:
        zone = self.default_tax_zone
        account: dict[str, Any] = {
            "id": id,
            "href": self.href("billingAccount", id),
            "@type": "BillingAccount",
            "status": "active",
            "currency": unit or self.default_currency,
            "billCycleDay": self.default_bill_cycle_day,
            "paymentTermsDays": self.default_payment_terms_days,
            "taxZone": zone,
            "taxRate": json_number(self.tax_rates[zone]),
        }
        if name:
            account["name"] = name
        if parties:
            account["relatedParty"] = [dict(p) for p in parties]
        return account

    async def ensure_account(
        self,
        uow: UnitOfWork,
        id: str,
        *,
        unit: str | None,
        parties: Sequence[Mapping[str, Any]],
        since: date,
    ) -> Stored:
        """The account ``id``, created with the defaults when billing meets it for the first time."""
        await uow.lock(f"billing-account:{id}")
        found = await uow.get(billing_account, id, for_update=True)
        if found is not None:
            return found
        doc = self.new_account(id, unit=unit, parties=parties)
        await self.add_account(uow, doc, since=since)
        stored = await uow.get(billing_account, id)
        assert stored is not None
        return stored

    async def add_account(self, uow: UnitOfWork, doc: dict[str, Any], *, since: date) -> None:
        """Stores a new account; its first bill run is at the end of its billing period holding ``since``."""
        first_cycle = domain.period_containing(int(doc["billCycleDay"]), since).end
        await uow.insert(
            billing_account, doc, columns={**account_columns(doc), "next_cycle_date": first_cycle}
        )

    def tax_rate(self, account: Mapping[str, Any]) -> Decimal:
        zone = account.get("taxZone", self.default_tax_zone)
        return self.tax_rates.get(zone, self.tax_rates[self.default_tax_zone])

    # --------------------------------------------------------------------------- charges

    async def charge_order(self, uow: UnitOfWork, order: Mapping[str, Any], *, at: datetime) -> int:
        """The charges of a completed order, once: its items' one-off prices at once, and the part of
        each recurring price from activation to the end of the current billing period (prorated by
        day), with the recurring charge kept for the bill runs. Returns the number of rates made; an
        order that is not completed (or was charged before) makes none."""
        if order.get("state") != "completed":
            return 0
        order_id = str(order["id"])
        claimed = await uow.fetch(
            pg_insert(kit.processed_event)
            .values(consumer=CHARGED_ORDERS, event_id=order_id)
            .on_conflict_do_nothing()
            .returning(kit.processed_event.c.event_id)
        )
        if not claimed:
            return 0
        activated = parse_datetime(order["completionDate"]) if order.get("completionDate") else at
        customers = [
            p
            for p in order.get("relatedParty") or []
            if isinstance(p, dict) and p.get("id") and p.get("role", "customer") == "customer"
        ]
        made = 0
        for item in order.get("productOrderItem") or []:
            if not isinstance(item, dict) or item.get("action", "add") != "add":
                continue  # modify/delete items: not charged yet
            if item.get("state", "completed") != "completed":
                continue
            ref = _account_ref(order, item)
            if ref is None:
                continue
            prices = [
                (index, price, amount)
                for index, price in enumerate(item.get("itemPrice") or [])
                if isinstance(price, dict) and (amount := _price_money(price)) is not None
            ]
            if not prices:
                continue
            unit = prices[0][2].currency.code
            account = await self.ensure_account(
                uow, ref, unit=unit, parties=customers, since=activated.date()
            )
            for index, price, amount in prices:
                made += await self._charge_price(
                    uow, account, order_id, item, index, price, amount, activated
                )
        return made

    async def _charge_price(
        self,
        uow: UnitOfWork,
        account: Stored,
        order_id: str,
        item: Mapping[str, Any],
        index: int,
        price: Mapping[str, Any],
        amount: Money,
        activated: datetime,
    ) -> int:
        acct = account.doc
        if amount.currency.code != acct["currency"]:
            log.warning(
                "price not in the account's currency: not charged",
                extra={"order": order_id, "item": item.get("id"), "account": account.id},
            )
            return 0
        item_id = str(item.get("id"))
        product = _object(item.get("product"))
        offering = _object(item.get("productOffering"))
        product_ref: dict[str, Any] = {
            "id": str(product.get("id") or f"{order_id}-{item_id}"),
            "@referredType": "Product",
        }
        if offering.get("name") or offering.get("id"):
            product_ref["name"] = str(offering.get("name") or offering.get("id"))
        base: dict[str, Any] = {
            "@type": "AppliedCustomerBillingRate",
            "name": str(price.get("name") or product_ref.get("name") or "Charge"),
            "isBilled": False,
            "billingAccount": self.account_ref(account.id),
            "product": product_ref,
            "characteristic": [
                {"name": "productOrderId", "value": order_id, "valueType": "string"},
                {"name": "productOrderItemId", "value": item_id, "valueType": "string"},
            ],
        }
        rate_percent = self.tax_rate(acct)
        if price.get("priceType") == "recurring":
            period = domain.period_containing(int(acct["billCycleDay"]), activated.date())
            charged = domain.prorated(amount, period, activated.date())
            coverage = {
                "startDateTime": format_datetime(activated),
                "endDateTime": period.to_tmf()["endDateTime"],
            }
            rate = {
                **base,
                "type": "recurringCharge",
                "description": f"{base['name']}: {activated.date()} to {period.end} ({(period.end - max(activated.date(), period.start)).days} of {period.days} days)",
                "date": format_datetime(activated),
                "periodCoverage": coverage,
                **domain.rate_amounts(charged, rate_percent),
            }
            key = f"{order_id}:{item_id}:{index}"
            await self._add_rate(uow, rate, source_key=f"{key}:{period.start}")
            await uow.execute(
                pg_insert(recurring_charge)
                .values(
                    id=key,
                    account_id=account.id,
                    rate={**base, "type": "recurringCharge"},
                    amount=amount.amount,
                    currency=amount.currency.code,
                    next_period_start=period.end,
                )
                .on_conflict_do_nothing()
            )
            return 1
        stamp = format_datetime(activated)
        rate = {
            **base,
            "type": "oneTimeCharge",
            "date": stamp,
            "periodCoverage": {"startDateTime": stamp, "endDateTime": stamp},
            **domain.rate_amounts(amount, rate_percent),
        }
        await self._add_rate(uow, rate, source_key=f"{order_id}:{item_id}:{index}")
        return 1

    async def _add_rate(self, uow: UnitOfWork, rate: dict[str, Any], *, source_key: str) -> dict[str, Any]:
        id = new_id()
        doc = {"id": id, "href": self.href("appliedCustomerBillingRate", id), **rate}
        await uow.insert(
            applied_customer_billing_rate, doc, columns={**rate_columns(doc), "source_key": source_key}
        )
        return doc

    # -------------------------------------------------------------------------- bill runs

    async def run_cycle(self, uow: UnitOfWork, now: datetime) -> int:
        """A bill run: every active account whose next cycle date has come by ``now`` gets its onCycle
        bill for that date (and for each later one that has also come, after an outage); see
        :meth:`bill_account_cycle`. Each account runs in its own savepoint: one that fails is logged
        and tried again by the next run. Returns the number of bills made."""
        t = billing_account
        due = await uow.fetch(
            select(t.c.id)
            .where(t.c.next_cycle_date <= now.date(), t.c.status == "active")
            .order_by(t.c.next_cycle_date, t.c.id)
        )
        made = 0
        for row in due:
            try:
                async with uow.savepoint():
                    made += len(await self.bill_account_cycle(uow, row["id"], upto=now.date()))
            except Exception:
                log.exception("bill run of an account failed", extra={"account": row["id"]})
        return made

    async def bill_account_cycle(
        self, uow: UnitOfWork, account_id: str, *, upto: date
    ) -> list[dict[str, Any]]:
        """The onCycle bills of ``account_id`` for each of its cycle dates from its next one up to
        ``upto``: for each, the recurring charges' periods starting by then are charged in advance and
        every unbilled rate charged up to that date is billed. The account's row lock and its next
        cycle date (moved on in the same transaction) make a cycle date billed once, however often or
        however concurrently runs come; the bill's unique cycle key backs that up."""
        await uow.lock(f"billing-account:{account_id}")
        account = await uow.get(billing_account, account_id, for_update=True)
        if account is None:
            return []
        day: date = account.columns["next_cycle_date"]
        bills = []
        while day <= upto:
            bill = await self._bill_cycle_date(uow, account, day)
            if bill is not None:
                bills.append(bill)
            day = domain.add_months(day, 1)
        if day != account.columns["next_cycle_date"]:
            await uow.set_columns(billing_account, account_id, {"next_cycle_date": day})
        return bills

    async def _bill_cycle_date(self, uow: UnitOfWork, account: Stored, day: date) -> dict[str, Any] | None:
        cycle_key = f"{account.id}:{day.isoformat()}"
        done = await uow.fetch(select(customer_bill.c.id).where(customer_bill.c.cycle_key == cycle_key))
        if done:
            return None
        cycle_at = domain.midnight(day)
        await self.charge_recurring(uow, account, upto=day)
        rates = await self.unbilled_rates(uow, account.id, upto=cycle_at)
        if not rates:
            return None
        current = domain.period_containing(int(account.doc["billCycleDay"]), day)
        previous = Period(domain.add_months(current.start, -1), current.start)
        return await self.issue_bill(
            uow,
            account,
            rates,
            run_type="onCycle",
            period=previous.to_tmf(),
            at=cycle_at,
            cycle_key=cycle_key,
            next_bill_date=domain.midnight(current.end),
        )

    async def charge_recurring(self, uow: UnitOfWork, account: Stored, *, upto: date) -> int:
        """Rates for every period of the account's recurring charges that starts by ``upto`` (charged
        in advance, whole periods)."""
        t = recurring_charge
        rows = await uow.fetch(
            select(t).where(t.c.account_id == account.id, t.c.next_period_start <= upto).with_for_update()
        )
        made = 0
        rate_percent = self.tax_rate(account.doc)
        for row in rows:
            start: date = row["next_period_start"]
            while start <= upto and (row["ended_at"] is None or start < row["ended_at"]):
                period = domain.period_containing(int(account.doc["billCycleDay"]), start)
                amount = Money.of(row["amount"], row["currency"])
                at = domain.midnight(period.start)
                rate = {
                    **row["rate"],
                    "description": f"{row['rate'].get('name', 'Charge')}: {period.start} to {period.end}",
                    "date": format_datetime(at),
                    "periodCoverage": period.to_tmf(),
                    **domain.rate_amounts(amount, rate_percent),
                }
                await self._add_rate(uow, rate, source_key=f"{row['id']}:{period.start}")
                made += 1
                start = period.end
            await uow.execute(t.update().where(t.c.id == row["id"]).values(next_period_start=start))
        return made


def _account_ref(order: Mapping[str, Any], item: Mapping[str, Any]) -> str | None:
    product = _object(item.get("product"))
    for holder in (item, product, order):
        ref = holder.get("billingAccount") if isinstance(holder, Mapping) else None
        if isinstance(ref, dict) and isinstance(ref.get("id"), str) and ref["id"]:
            return str(ref["id"])[:MAX_ID_LENGTH]
    return None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _price_money(price: Mapping[str, Any]) -> Money | None:
    """A price's amount before tax (``dutyFreeAmount``, quantity included, as ordering prices it)."""
    inner = price.get("price")
    money = inner.get("dutyFreeAmount") if isinstance(inner, dict) else None
    return Money.from_tmf(money) if isinstance(money, dict) else None
