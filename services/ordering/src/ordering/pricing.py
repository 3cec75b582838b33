"""Pricing of an accepted order from the catalogue: ``itemPrice`` on every item and ``orderTotalPrice``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from switchboard_kit.money import json_number, round_amount

from .catalog import Catalog, OfferingPrice, ProductOffering
from .documents import ItemAction, copy_document, objects, ref_id

_PRICE_TYPE_ORDER = {"recurring": 0, "oneTime": 1}


def price_order(order: Mapping[str, Any], catalog: Catalog, *, in_place: bool = False) -> dict[str, Any]:
    """A copy of ``order`` (or ``order`` itself, with ``in_place``) with ``itemPrice`` on every item and
    ``orderTotalPrice``.

    Each catalogue price becomes one ``OrderPrice`` in ``itemPrice``, multiplied
    by the item's quantity. Which prices apply depends on the action: ``add``
    pays all of them; ``modify`` pays the recurring ones (the charge going
    forward; one-off charges such as installation apply to new products only);
    ``delete`` and ``noChange`` pay nothing (``itemPrice: []``).

    ``orderTotalPrice`` sums the items per priceType, recurringChargePeriod and
    currency (recurring first). ``taxRate`` is kept on a total only when every
    price in it has the same rate. Amounts are ``Decimal`` internally, rounded
    half-even to the currency's minor unit on the way out
    (``switchboard_kit.money``) and written as the JSON numbers that are exactly
    those decimals.

    Call ``validate_order`` first: an unknown offering raises ``UnknownOffering``
    and an invalid quantity raises ``ValueError``.
    """
    priced = order if in_place and isinstance(order, dict) else copy_document(order)
    lines: list[tuple[str, str | None, int]] = []
    for item in objects(priced.get("productOrderItem")):
        offering_id = ref_id(item.get("productOffering")) or ""
        quantity = item.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValueError(f"item {item.get('id')!r}: invalid quantity {quantity!r}")
        action = item.get("action")
        line = (offering_id, action if isinstance(action, str) else None, quantity)
        item["itemPrice"] = orjson.loads(_priced(catalog, line, _item_prices))
        lines.append(line)
    priced["orderTotalPrice"] = orjson.loads(_priced(catalog, tuple(lines), _order_totals))
    return priced


# The catalogue does not change while the service runs, so the price of an item (offering, action,
# quantity) and the totals of a list of items are computed once and kept as JSON; each order gets
# fresh copies (orjson.loads). The cache lives on the catalogue and is bounded.
_PRICED_CACHE_SIZE = 10_000


def _priced(catalog: Catalog, key: Any, build: Callable[[Catalog, Any], Any]) -> bytes:
    cache = catalog.computed
    found: bytes | None = cache.get(key)
    if found is None:
        found = orjson.dumps(build(catalog, key))
        if len(cache) >= _PRICED_CACHE_SIZE:
            cache.clear()
        cache[key] = found
    return found


def _item_prices(catalog: Catalog, line: tuple[str, str | None, int]) -> list[dict[str, Any]]:
    offering_id, action, quantity = line
    return [_build_order_price(p, quantity) for p in _chargeable(catalog.offering(offering_id), action)]


def _order_totals(catalog: Catalog, lines: tuple[tuple[str, str | None, int], ...]) -> list[dict[str, Any]]:
    totals: dict[tuple[str, str | None, str], _Total] = {}
    for offering_id, action, quantity in lines:
        for price in _chargeable(catalog.offering(offering_id), action):
            key = (price.price_type, price.recurring_charge_period, price.currency)
            totals.setdefault(key, _Total()).add(price, quantity)
    ordered = sorted(totals.items(), key=lambda kv: (_PRICE_TYPE_ORDER[kv[0][0]], kv[0][1] or "", kv[0][2]))
    return [total.to_tmf(*key) for key, total in ordered]


def _chargeable(offering: ProductOffering, action: Any) -> tuple[OfferingPrice, ...]:
    if action == ItemAction.ADD:
        return offering.prices
    if action == ItemAction.MODIFY:
        return tuple(p for p in offering.prices if p.price_type == "recurring")
    return ()


@dataclass
class _Total:
    tax_included: Decimal = Decimal(0)
    duty_free: Decimal = Decimal(0)
    tax_rates: frozenset[Decimal] = frozenset()

    def add(self, price: OfferingPrice, quantity: int) -> None:
        self.tax_included += price.tax_included_amount * quantity
        self.duty_free += price.duty_free_amount * quantity
        self.tax_rates |= {price.tax_rate}

    def to_tmf(self, price_type: str, period: str | None, currency: str) -> dict[str, Any]:
        result: dict[str, Any] = {
            "@type": "OrderPrice",
            "name": f"Total recurring charges per {period}" if period else "Total one-time charges",
            "priceType": price_type,
        }
        if period is not None:
            result["recurringChargePeriod"] = period
        rate = next(iter(self.tax_rates)) if len(self.tax_rates) == 1 else None
        result["price"] = _price(self.tax_included, self.duty_free, currency, rate)
        return result


def _build_order_price(price: OfferingPrice, quantity: int) -> dict[str, Any]:
    result: dict[str, Any] = {"@type": "OrderPrice", "name": price.name}
    if quantity != 1:
        result["description"] = (
            f"{quantity} x {_money(price.tax_included_amount, price.currency)} {price.currency}"
        )
    result["priceType"] = price.price_type
    if price.recurring_charge_period is not None:
        result["recurringChargePeriod"] = price.recurring_charge_period
    result["price"] = _price(
        price.tax_included_amount * quantity,
        price.duty_free_amount * quantity,
        price.currency,
        price.tax_rate,
    )
    result["productOfferingPrice"] = {
        "id": price.id,
        "name": price.name,
        "@referredType": "ProductOfferingPrice",
    }
    return result


def _price(
    tax_included: Decimal, duty_free: Decimal, currency: str, tax_rate: Decimal | None
) -> dict[str, Any]:
    price: dict[str, Any] = {
        "@type": "Price",
        "taxIncludedAmount": {"unit": currency, "value": _money(tax_included, currency)},
        "dutyFreeAmount": {"unit": currency, "value": _money(duty_free, currency)},
    }
    if tax_rate is not None:
        price["taxRate"] = json_number(tax_rate)
    return price


def _money(amount: Decimal, currency: str) -> int | float:
    return json_number(round_amount(amount, currency))
