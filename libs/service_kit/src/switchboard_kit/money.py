"""Money: ISO 4217 currencies with their minor units, one rounding rule, sums that never mix
currencies, and allocation that creates or loses nothing.

Amounts are :class:`~decimal.Decimal`. The currency table is the ISO 4217 list as the ``iso4217``
package ships it (the maintenance agency's XML, republished with each amendment): EUR has 2 minor
units, JPY 0, BHD 3. Codes without a minor unit there (gold ``XAU``, ``XXX``...) are not money here.

- :func:`round_amount` is the one place amounts are rounded: half-even ("banker's rounding") to the
  currency's minor unit.
- Adding or subtracting :class:`Money` of two currencies raises :class:`CurrencyMismatch`, a
  ``400 Bad request`` when it reaches the API: never a silent add.
- :func:`allocate` splits an amount across weighted parts (largest remainder, in minor units):
  the parts always add up to the amount.
- :func:`json_number` is how an amount leaves as a JSON number (see its docstring).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import iso4217

from tmf_models._base import json_number as _json_number

from .errors import BadRequest

__all__ = [
    "Currency",
    "CurrencyMismatch",
    "InexactAmount",
    "Money",
    "UnknownCurrency",
    "allocate",
    "as_decimal",
    "currency",
    "json_number",
    "round_amount",
    "total",
]


class UnknownCurrency(BadRequest):
    """A code that is not an ISO 4217 currency with a minor unit (a 400 at the API)."""

    def __init__(self, code: object) -> None:
        super().__init__("Unknown currency", f"{str(code)[:20]!r} is not an ISO 4217 currency code")


class CurrencyMismatch(BadRequest):
    """Amounts of different currencies added, subtracted or compared (a 400 at the API)."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__("Currency mismatch", f"Amounts in {first} and {second} cannot be combined")


class InexactAmount(ValueError):
    """An amount that a JSON number as this suite carries it (an IEEE double) cannot hold exactly."""


@dataclass(frozen=True)
class Currency:
    """An ISO 4217 currency: its code and how many decimal places its minor unit has."""

    code: str
    minor_units: int

    @property
    def quantum(self) -> Decimal:
        """The minor unit as an amount: ``0.01`` for EUR, ``1`` for JPY, ``0.001`` for BHD."""
        return Decimal(1).scaleb(-self.minor_units)


@functools.cache
def _table() -> Mapping[str, Currency]:
    return {
        c.code: Currency(c.code, c.exponent)
        for c in iso4217.Currency
        if c.exponent is not None and c.code.isalpha() and len(c.code) == 3
    }


def currency(code: str | Currency) -> Currency:
    """The ISO 4217 currency ``code`` names (upper case, as the standard writes it)."""
    if isinstance(code, Currency):
        return code
    found = _table().get(code) if isinstance(code, str) else None
    if found is None:
        raise UnknownCurrency(code)
    return found


def currencies() -> Mapping[str, Currency]:
    """Every currency this module knows, by code."""
    return _table()


def as_decimal(value: Any) -> Decimal:
    """A JSON number as the exact decimal it stands for. A float is read through its shortest
    representation (``repr``), which is the number the JSON text said when it had at most 15
    significant digits (the kit refuses longer ones, see :mod:`switchboard_kit.bodies`); so
    ``0.1`` is ``Decimal("0.1")``, never ``0.1000000000000000055...``. Booleans, strings, NaN and
    infinities are refused (``ValueError``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"not a JSON number: {value!r}")
    result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def round_amount(amount: Decimal, code: str | Currency) -> Decimal:
    """``amount`` rounded half-even to the minor unit of the currency: the one rounding rule."""
    return amount.quantize(currency(code).quantum, rounding=ROUND_HALF_EVEN)


def json_number(amount: Decimal) -> int | float:
    """``amount`` as the JSON number the kit writes: an ``int`` when it is whole, else a ``float``
    whose shortest representation is exactly ``amount`` (``Decimal("19.99")`` is written
    ``19.99``), as ``tmf_models``' ``Number`` fields write it. Documents are written by orjson,
    whose JSON numbers are integers and doubles; a double holds any decimal of at most 15
    significant digits exactly, and an amount it would not hold raises :class:`InexactAmount`
    rather than become a different number."""
    try:
        return _json_number(amount)
    except ValueError as exc:
        raise InexactAmount(str(exc)) from None


@dataclass(frozen=True)
class Money:
    """An amount in a currency. Arithmetic keeps full precision (no rounding) and refuses to mix
    currencies; :meth:`rounded` rounds to the minor unit."""

    amount: Decimal
    currency: Currency

    @classmethod
    def of(cls, value: Any, code: str | Currency) -> Money:
        """``Money.of("19.99", "EUR")``, ``Money.of(Decimal(5), "JPY")``; a float is read as
        :func:`as_decimal` reads it. A string must be a plain decimal number."""
        if isinstance(value, str):
            try:
                amount = Decimal(value)
            except ArithmeticError:
                raise ValueError(f"not a number: {value!r}") from None
            if not amount.is_finite():
                raise ValueError(f"not a finite number: {value!r}")
        else:
            amount = as_decimal(value)
        return cls(amount, currency(code))

    @classmethod
    def zero(cls, code: str | Currency) -> Money:
        return cls(Decimal(0), currency(code))

    @classmethod
    def from_tmf(cls, money: Mapping[str, Any]) -> Money:
        """A TMF ``Money`` object (``{"unit": "EUR", "value": 19.99}``)."""
        return cls.of(money.get("value"), money.get("unit"))  # type: ignore[arg-type]

    def to_tmf(self) -> dict[str, Any]:
        """The TMF ``Money`` object, rounded to the minor unit, its value a JSON number."""
        return {"unit": self.currency.code, "value": json_number(self.rounded().amount)}

    def rounded(self) -> Money:
        return Money(round_amount(self.amount, self.currency), self.currency)

    def _same(self, other: Money) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(self.currency.code, other.currency.code)
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._same(other).amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._same(other).amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int | Decimal):
            raise TypeError("Money is multiplied by an int or a Decimal")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same(other).amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._same(other).amount

    def __str__(self) -> str:
        return f"{self.amount} {self.currency.code}"


def total(amounts: Iterable[Money], code: str | Currency | None = None) -> Money:
    """The sum of ``amounts``, exact (no rounding), in their one currency; ``code`` says which
    currency an empty sum is in and, when given, every amount must be in it."""
    result = Money.zero(code) if code is not None else None
    for money in amounts:
        result = money if result is None else result + money
    if result is None:
        raise ValueError("the total of no amounts needs a currency")
    return result


def allocate(money: Money, weights: Sequence[int | Decimal]) -> list[Money]:
    """``money`` split across ``len(weights)`` parts in proportion to ``weights``, in whole minor
    units, adding up to exactly ``money``: each part gets the floor of its share and the minor
    units left over go one each to the parts with the largest remainders (ties: the earlier part).
    ``money`` must be a whole number of minor units (round it first); weights are non-negative and
    not all zero."""
    if not weights:
        raise ValueError("allocate needs at least one weight")
    shares = [as_decimal(w) for w in weights]
    if any(w < 0 for w in shares) or sum(shares) == 0:
        raise ValueError("weights must be non-negative and not all zero")
    quantum = money.currency.quantum
    units = money.amount / quantum
    if units != units.to_integral_value():
        raise ValueError(f"{money} is not a whole number of minor units; round it first")
    sign = -1 if units < 0 else 1
    whole = int(abs(units))
    # Integer arithmetic throughout (weights scaled to integers), so no share is ever rounded.
    scale = max(0, *(-int(w.as_tuple().exponent) for w in shares))
    ints = [int(w.scaleb(scale)) for w in shares]
    weight_sum = sum(ints)
    floors = [whole * w // weight_sum for w in ints]
    remainders = [whole * w % weight_sum for w in ints]
    left = whole - sum(floors)  # < len(weights): each floor lost less than one unit
    by_remainder = sorted(range(len(ints)), key=lambda i: (-remainders[i], i))
    for i in by_remainder[:left]:
        floors[i] += 1
    return [Money(Decimal(sign * n) * quantum, money.currency) for n in floors]
