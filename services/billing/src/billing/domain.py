"""Billing rules as pure functions: the bill state machine, billing periods, proration, tax and bill
totals. No I/O; the service persists what these return."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from switchboard_kit.errors import BadRequest, Conflict
from switchboard_kit.money import Money, json_number, round_amount, total
from tmf_models._base import format_datetime


class BillState(StrEnum):
    NEW = "new"
    VALIDATED = "validated"
    SENT = "sent"
    PARTIALLY_PAID = "partiallyPaid"
    SETTLED = "settled"
    ON_HOLD = "onHold"


class OnDemandState(StrEnum):
    IN_PROGRESS = "inProgress"
    DONE = "done"
    REJECTED = "rejected"
    TERMINATED_WITH_ERROR = "terminatedWithError"


# The steps a client may take by PATCH. partiallyPaid and settled follow payments (remainingAmount),
# never a PATCH; onHold is allowed from any state and ends by going back to the state it interrupted.
CLIENT_STEPS: Mapping[BillState, frozenset[BillState]] = {
    BillState.NEW: frozenset({BillState.VALIDATED}),
    BillState.VALIDATED: frozenset({BillState.SENT}),
}
# The states a bill passes through when it is issued (a cycle run or a bill on demand).
ISSUE_PATH = (BillState.NEW, BillState.VALIDATED, BillState.SENT)


@dataclass(frozen=True)
class StateChange:
    state: BillState
    held_from: BillState | None  # the state an onHold bill returns to


def _state(value: Any) -> BillState:
    try:
        return BillState(value)
    except ValueError:
        raise BadRequest("Invalid state", f"{str(value)[:40]!r} is not a CustomerBill state") from None


def change_state(current: Any, target: Any, held_from: Any = None) -> StateChange | None:
    """A client's change of a bill's ``state``: ``None`` when the bill is already in ``target`` (a
    no-op), the new state otherwise; :class:`Conflict` (409) for a change the machine does not allow."""
    now, wanted = _state(current), _state(target)
    before = None if held_from is None else _state(held_from)
    if wanted == now:
        return None
    if wanted == BillState.ON_HOLD:
        return StateChange(BillState.ON_HOLD, now)
    if now == BillState.ON_HOLD:
        if before is not None and wanted == before:
            return StateChange(wanted, None)
        raise Conflict(
            "Invalid state transition",
            f"An onHold bill goes back to {before or 'its earlier state'}, not to {wanted}",
        )
    if wanted in CLIENT_STEPS.get(now, frozenset()):
        return StateChange(wanted, None)
    raise Conflict("Invalid state transition", f"A bill in state {now} cannot go to {wanted}")


# --------------------------------------------------------------------------- billing periods


def add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    return day.replace(year=day.year + index // 12, month=index % 12 + 1)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    """A billing period: from ``start`` (included) to ``end`` (excluded), whole days in UTC."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def next(self) -> Period:
        return Period(self.end, add_months(self.end, 1))

    def to_tmf(self) -> dict[str, str]:
        return {
            "startDateTime": format_datetime(midnight(self.start)),
            "endDateTime": format_datetime(midnight(self.end)),
        }


def period_containing(cycle_day: int, at: date) -> Period:
    """The billing period of an account with bill cycle day ``cycle_day`` (1 to 28) that holds ``at``."""
    if not 1 <= cycle_day <= 28:
        raise ValueError("a bill cycle day is 1 to 28")
    start = at.replace(day=cycle_day)
    if start > at:
        start = add_months(start, -1)
    return Period(start, add_months(start, 1))


def prorated(amount: Money, period: Period, active_from: date) -> Money:
    """The part of a whole period's ``amount`` for the days from ``active_from`` (included) to the end
    of ``period``, rounded half-even to the minor unit."""
    start = max(active_from, period.start)
    days = max((period.end - start).days, 0)
    if days == period.days:
        return amount.rounded()
    return Money(amount.amount * days / period.days, amount.currency).rounded()


# ---------------------------------------------------------------------------------- amounts


def tax_of(amount: Money, rate_percent: Decimal) -> Money:
    """The tax on one line, rounded half-even to the minor unit (tax is computed per line)."""
    return Money(round_amount(amount.amount * rate_percent / 100, amount.currency), amount.currency)


def money_json(money: Money) -> dict[str, Any]:
    return money.to_tmf()


def rate_amounts(excluded: Money, rate_percent: Decimal) -> dict[str, Any]:
    """The amount attributes of an AppliedCustomerBillingRate: excluded, its tax line, included."""
    excluded = excluded.rounded()
    tax = tax_of(excluded, rate_percent)
    return {
        "taxExcludedAmount": money_json(excluded),
        "appliedTax": [
            {
                "@type": "AppliedBillingTaxRate",
                "taxCategory": "VAT",
                "taxRate": json_number(rate_percent),
                "taxAmount": money_json(tax),
            }
        ],
        "taxIncludedAmount": money_json(excluded + tax),
    }


@dataclass(frozen=True)
class BillTotals:
    tax_excluded: Money
    tax: Money
    tax_included: Money
    tax_items: list[dict[str, Any]]


def bill_totals(rates: Sequence[Mapping[str, Any]], currency: str) -> BillTotals:
    """The totals of a bill holding ``rates``: ``taxExcludedAmount`` is exactly the sum of the rates'
    amounts, each tax item the sum of the rates' tax lines at its rate, and ``taxIncludedAmount``
    their sum."""
    excluded = total((Money.from_tmf(r["taxExcludedAmount"]) for r in rates), currency)
    by_rate: dict[tuple[str, Decimal], list[Money]] = {}
    for rate in rates:
        for line in rate.get("appliedTax") or []:
            key = (str(line.get("taxCategory", "VAT")), Decimal(repr(line["taxRate"])))
            by_rate.setdefault(key, []).append(Money.from_tmf(line["taxAmount"]))
    items = []
    tax = Money.zero(currency)
    for (category, percent), amounts in sorted(by_rate.items()):
        amount = total(amounts, currency)
        tax = tax + amount
        items.append(
            {
                "@type": "TaxItem",
                "taxCategory": category,
                "taxRate": json_number(percent),
                "taxAmount": money_json(amount),
            }
        )
    return BillTotals(excluded, tax, excluded + tax, items)


def payment_due(bill_date: datetime, terms_days: int) -> datetime:
    return bill_date + timedelta(days=terms_days)


def ids(values: Iterable[Any]) -> list[str]:
    return sorted({str(v) for v in values if v})
