"""The product catalogue that ordering validates and prices against.

The data lives in a versioned file, ``catalog/catalog.json``, shipped inside the
package. ``Catalog.load()`` reads it once; after that every lookup is pure, so
``validation`` and ``pricing`` can take a ``Catalog`` without doing I/O themselves.

Amounts are parsed as ``Decimal`` (never ``float``) so that prices multiply and
add up exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

from switchboard_kit.money import UnknownCurrency, currency

PriceType = Literal["recurring", "oneTime"]
ValueType = Literal["string", "boolean", "integer", "number"]

ITEM_ACTIONS = frozenset({"add", "modify", "delete", "noChange"})
ORDERABLE_STATUS = "Launched"

_PRICE_TYPES: frozenset[str] = frozenset({"recurring", "oneTime"})
_VALUE_TYPES: frozenset[str] = frozenset({"string", "boolean", "integer", "number"})


class CatalogError(ValueError):
    """The catalogue data is malformed."""


class UnknownOffering(KeyError):
    """No product offering with this id exists in the catalogue."""

    def __init__(self, offering_id: str) -> None:
        super().__init__(offering_id)
        self.offering_id = offering_id


@dataclass(frozen=True)
class CharacteristicSpec:
    name: str
    required: bool
    value_type: ValueType
    description: str = ""
    allowed_values: tuple[str, ...] | None = None
    pattern: re.Pattern[str] | None = None
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class OfferingPrice:
    id: str
    name: str
    price_type: PriceType
    recurring_charge_period: str | None
    currency: str
    tax_included_amount: Decimal
    duty_free_amount: Decimal
    tax_rate: Decimal


@dataclass(frozen=True)
class ProductOffering:
    id: str
    name: str
    version: str
    lifecycle_status: str
    description: str
    prices: tuple[OfferingPrice, ...]
    characteristics: tuple[CharacteristicSpec, ...]
    allowed_actions: frozenset[str]
    requires_place: bool
    # Add-ons: the order (or the customer's installed base) must hold one of these.
    requires_one_of: frozenset[str] = frozenset()

    @property
    def is_orderable(self) -> bool:
        """Whether new instances can be sold (action ``add``)."""
        return self.lifecycle_status == ORDERABLE_STATUS

    @property
    def has_recurring_price(self) -> bool:
        return any(p.price_type == "recurring" for p in self.prices)

    def characteristic(self, name: str) -> CharacteristicSpec | None:
        return next((c for c in self.characteristics if c.name == name), None)


@dataclass(frozen=True)
class Catalog:
    version: str
    offerings: Mapping[str, ProductOffering]
    postcode_formats: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    # What the order rules derive from this catalogue and keep (prices as JSON); see pricing.price_order.
    computed: dict[Any, bytes] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Catalog:
        """Read a catalogue file; by default the one packaged with the service."""
        if path is None:
            text = resources.files("ordering").joinpath("catalog").joinpath("catalog.json").read_text("utf-8")
        else:
            text = Path(path).read_text("utf-8")
        return cls.from_dict(json.loads(text, parse_float=Decimal))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Catalog:
        """Build a catalogue from the JSON structure of ``catalog.json``."""
        version = data.get("version")
        if not isinstance(version, str) or not version:
            raise CatalogError("catalogue has no version")
        offerings: dict[str, ProductOffering] = {}
        for raw in _list(data, "productOfferings", "catalogue"):
            offering = _offering(raw)
            if offering.id in offerings:
                raise CatalogError(f"duplicate product offering {offering.id!r}")
            offerings[offering.id] = offering
        for offering in offerings.values():
            missing = offering.requires_one_of - offerings.keys()
            if missing:
                raise CatalogError(f"{offering.id}: requiresOneOf names unknown offerings {sorted(missing)}")
        formats = data.get("postcodeFormats", {})
        if not isinstance(formats, Mapping):
            raise CatalogError("postcodeFormats must be an object")
        return cls(
            version=version,
            offerings=offerings,
            postcode_formats={str(k): _regex(v, f"postcodeFormats.{k}") for k, v in formats.items()},
        )

    def offering(self, offering_id: str) -> ProductOffering:
        """The offering with this id; raises ``UnknownOffering`` if there is none."""
        try:
            return self.offerings[offering_id]
        except KeyError:
            raise UnknownOffering(offering_id) from None

    def find(self, offering_id: str) -> ProductOffering | None:
        return self.offerings.get(offering_id)

    def __contains__(self, offering_id: object) -> bool:
        return offering_id in self.offerings

    def postcode_pattern(self, country: str) -> re.Pattern[str] | None:
        """The postcode format for an ISO 3166-1 alpha-2 country; None if we do not serve it."""
        return self.postcode_formats.get(country)


def _offering(raw: Any) -> ProductOffering:
    if not isinstance(raw, Mapping):
        raise CatalogError("product offering must be an object")
    oid = _str(raw, "id", "product offering")
    actions = frozenset(_str_list(raw, "allowedActions", oid))
    if not actions <= ITEM_ACTIONS:
        raise CatalogError(f"{oid}: unknown allowedActions {sorted(actions - ITEM_ACTIONS)}")
    return ProductOffering(
        id=oid,
        name=_str(raw, "name", oid),
        version=_str(raw, "version", oid),
        lifecycle_status=_str(raw, "lifecycleStatus", oid),
        description=str(raw.get("description", "")),
        prices=tuple(_price(p, oid) for p in _list(raw, "prices", oid)),
        characteristics=tuple(_characteristic(c, oid) for c in raw.get("characteristics", [])),
        allowed_actions=actions,
        requires_place=bool(raw.get("requiresPlace", False)),
        requires_one_of=frozenset(raw.get("requiresOneOf", [])),
    )


def _price(raw: Any, oid: str) -> OfferingPrice:
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{oid}: price must be an object")
    where = f"{oid} price {raw.get('id')!r}"
    price_type = _str(raw, "priceType", where)
    if price_type not in _PRICE_TYPES:
        raise CatalogError(f"{where}: unknown priceType {price_type!r}")
    period = raw.get("recurringChargePeriod")
    if (price_type == "recurring") != (period is not None):
        raise CatalogError(f"{where}: recurringChargePeriod is required for, and only for, recurring prices")
    price = raw.get("price")
    if not isinstance(price, Mapping):
        raise CatalogError(f"{where}: missing price")
    incl, incl_unit = _money(price.get("taxIncludedAmount"), where)
    duty_free, duty_free_unit = _money(price.get("dutyFreeAmount"), where)
    if incl_unit != duty_free_unit:
        raise CatalogError(f"{where}: taxIncludedAmount and dutyFreeAmount differ in currency")
    return OfferingPrice(
        id=_str(raw, "id", where),
        name=_str(raw, "name", where),
        price_type=cast(PriceType, price_type),
        recurring_charge_period=str(period) if period is not None else None,
        currency=incl_unit,
        tax_included_amount=incl,
        duty_free_amount=duty_free,
        tax_rate=_decimal(price.get("taxRate", 0), f"{where} taxRate"),
    )


def _characteristic(raw: Any, oid: str) -> CharacteristicSpec:
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{oid}: characteristic must be an object")
    name = _str(raw, "name", f"{oid} characteristic")
    where = f"{oid} characteristic {name!r}"
    value_type = raw.get("valueType", "string")
    if value_type not in _VALUE_TYPES:
        raise CatalogError(f"{where}: unknown valueType {value_type!r}")
    allowed = raw.get("allowedValues")
    pattern = raw.get("pattern")
    return CharacteristicSpec(
        name=name,
        required=bool(raw.get("required", False)),
        value_type=cast(ValueType, value_type),
        description=str(raw.get("description", "")),
        allowed_values=tuple(str(v) for v in allowed) if allowed is not None else None,
        pattern=_regex(pattern, where) if pattern is not None else None,
        minimum=int(raw["minimum"]) if "minimum" in raw else None,
        maximum=int(raw["maximum"]) if "maximum" in raw else None,
    )


def _money(raw: Any, where: str) -> tuple[Decimal, str]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("unit"), str):
        raise CatalogError(f"{where}: money needs a unit and a value")
    try:
        currency(raw["unit"])
    except UnknownCurrency as exc:
        raise CatalogError(f"{where}: {exc.message}") from None
    return _decimal(raw.get("value"), f"{where} amount"), raw["unit"]


def _decimal(value: Any, where: str) -> Decimal:
    # bool is an int; a price of True is a data error, not 1.
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float | str):
        raise CatalogError(f"{where}: not a number: {value!r}")
    try:
        return Decimal(str(value))
    except ArithmeticError as exc:
        raise CatalogError(f"{where}: not a number: {value!r}") from exc


def _regex(value: Any, where: str) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise CatalogError(f"{where}: pattern must be a string")
    try:
        return re.compile(value)
    except re.error as exc:
        raise CatalogError(f"{where}: invalid pattern {value!r}: {exc}") from exc


def _str(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise CatalogError(f"{where}: {key} must be a non-empty string")
    return value


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key)
    if not isinstance(value, list):
        raise CatalogError(f"{where}: {key} must be a list")
    return value


def _str_list(raw: Mapping[str, Any], key: str, where: str) -> list[str]:
    values = _list(raw, key, where)
    if not all(isinstance(v, str) for v in values):
        raise CatalogError(f"{where}: {key} must be a list of strings")
    return values
