"""switchboard_kit.money: currencies, rounding, sums and allocation (property-based with hypothesis)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard_kit.errors import BadRequest
from switchboard_kit.money import (
    CurrencyMismatch,
    InexactAmount,
    Money,
    UnknownCurrency,
    allocate,
    as_decimal,
    currencies,
    currency,
    json_number,
    round_amount,
    total,
)

# Minor units per the ISO 4217 list (amendment 179 and later); a sample across 0, 2, 3 and 4.
KNOWN = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "JPY": 0, "KRW": 0, "ISK": 0, "VND": 0, "CLP": 0,
    "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3, "CLF": 4, "UYW": 4,
}  # fmt: skip

CODES = sorted(currencies())


class TestCurrency:
    @pytest.mark.parametrize(("code", "minor"), sorted(KNOWN.items()))
    def test_minor_units_of_known_currencies(self, code, minor):
        assert currency(code).minor_units == minor

    def test_the_table_is_the_iso_list(self):
        assert len(CODES) > 150
        assert all(len(c) == 3 and c.isupper() for c in CODES)

    @pytest.mark.parametrize("code", ["eur", "EURO", "XAU", "XXX", "", None, 978])
    def test_unknown_codes_are_a_400(self, code):
        with pytest.raises(UnknownCurrency) as caught:
            currency(code)
        assert isinstance(caught.value, BadRequest)
        assert caught.value.status == 400


class TestRounding:
    def test_half_even_to_the_minor_unit(self):
        assert round_amount(Decimal("2.345"), "EUR") == Decimal("2.34")
        assert round_amount(Decimal("2.355"), "EUR") == Decimal("2.36")
        assert round_amount(Decimal("0.5"), "JPY") == Decimal("0")
        assert round_amount(Decimal("1.5"), "JPY") == Decimal("2")
        assert round_amount(Decimal("1.0005"), "BHD") == Decimal("1.000")

    def test_no_drift(self):
        assert Money.of(0.1, "EUR") + Money.of(0.2, "EUR") == Money.of("0.3", "EUR")
        assert as_decimal(0.1) + as_decimal(0.2) == Decimal("0.3")


class TestSums:
    def test_mixed_currencies_never_add(self):
        with pytest.raises(CurrencyMismatch) as caught:
            Money.of(1, "EUR") + Money.of(1, "USD")
        assert caught.value.status == 400
        with pytest.raises(CurrencyMismatch):
            total([Money.of(1, "EUR"), Money.of(1, "GBP")])
        with pytest.raises(CurrencyMismatch):
            total([Money.of(1, "EUR")], "USD")
        with pytest.raises(CurrencyMismatch):
            Money.of(1, "EUR") - Money.of(1, "USD")

    def test_empty_total_needs_a_currency(self):
        assert total([], "JPY") == Money.zero("JPY")
        with pytest.raises(ValueError, match="currency"):
            total([])


amounts = st.decimals(min_value=-(10**9), max_value=10**9, places=6, allow_nan=False, allow_infinity=False)


@st.composite
def priced(draw):
    code = draw(st.sampled_from(CODES))
    values = draw(st.lists(amounts, min_size=1, max_size=30))
    return code, [Money(v, currency(code)) for v in values]


class TestProperties:
    @given(priced(), st.randoms())
    def test_sums_in_any_order_are_equal(self, data, rnd):
        code, moneys = data
        shuffled = list(moneys)
        rnd.shuffle(shuffled)
        assert total(moneys) == total(shuffled) == total(reversed(moneys), code)
        # Rounded parts summed in any order agree too.
        assert total(m.rounded() for m in moneys) == total(m.rounded() for m in shuffled)

    @given(
        st.sampled_from(CODES),
        st.integers(min_value=-(10**12), max_value=10**12),
        st.lists(
            st.integers(min_value=0, max_value=10**6) | amounts.map(abs), min_size=1, max_size=20
        ).filter(lambda ws: sum(ws) > 0),
    )
    def test_allocation_creates_and_loses_nothing(self, code, units, weights):
        cur = currency(code)
        money = Money(Decimal(units) * cur.quantum, cur)
        parts = allocate(money, weights)
        assert len(parts) == len(weights)
        assert total(parts, code) == money  # nothing created or lost
        for part, weight in zip(parts, weights, strict=True):
            assert part.rounded() == part  # whole minor units
            exact_share = money.amount * as_decimal(weight) / sum(as_decimal(w) for w in weights)
            assert abs(part.amount - exact_share) < cur.quantum  # within one minor unit of its share

    @given(priced(), st.randoms())
    def test_allocating_parts_in_any_order_gives_the_same_total(self, data, rnd):
        code, moneys = data
        money = total(moneys).rounded()
        weights = [abs(m.amount) + 1 for m in moneys]
        shuffled = list(weights)
        rnd.shuffle(shuffled)
        assert total(allocate(money, weights), code) == total(allocate(money, shuffled), code) == money

    @given(amounts, st.sampled_from(CODES))
    def test_rounding_loses_less_than_half_a_minor_unit(self, value, code):
        rounded = round_amount(value, code)
        assert abs(rounded - value) <= currency(code).quantum / 2
        assert round_amount(rounded, code) == rounded

    @given(
        st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**10), max_value=10**10)
    )
    def test_json_numbers_are_exact(self, value):
        number = json_number(value)
        assert as_decimal(number) == value
        assert Decimal(repr(number)) == value


class TestJsonNumber:
    def test_money_value_comes_back_as_sent(self):
        money = Money.from_tmf({"unit": "EUR", "value": 19.99})
        assert money.amount == Decimal("19.99")
        assert money.to_tmf() == {"unit": "EUR", "value": 19.99}
        assert repr(money.to_tmf()["value"]) == "19.99"

    def test_whole_amounts_are_integers(self):
        assert json_number(Decimal("10.00")) == 10
        assert isinstance(json_number(Decimal("10.00")), int)

    @pytest.mark.parametrize(
        "amount", ["0.1000000000000000055511151231257827", "1234567890123456.7", "1E-400", "NaN", "Infinity"]
    )
    def test_a_number_a_double_cannot_hold_is_refused(self, amount):
        with pytest.raises(InexactAmount):
            json_number(Decimal(amount))

    @pytest.mark.parametrize("value", [True, "1.5", None, float("nan"), float("inf")])
    def test_as_decimal_takes_json_numbers_only(self, value):
        with pytest.raises(ValueError, match="number"):
            as_decimal(value)

    def test_allocate_refuses_bad_input(self):
        with pytest.raises(ValueError, match="round it first"):
            allocate(Money.of("0.005", "EUR"), [1, 1])
        with pytest.raises(ValueError, match="not all zero"):
            allocate(Money.of(1, "EUR"), [0, 0])
        with pytest.raises(ValueError, match="at least one"):
            allocate(Money.of(1, "EUR"), [])
        assert [p.amount for p in allocate(Money.of("0.10", "EUR"), [1, 1, 1])] == [
            Decimal("0.04"),
            Decimal("0.03"),
            Decimal("0.03"),
        ]
        assert [p.amount for p in allocate(Money.of("-100", "JPY"), [1, 2])] == [Decimal(-33), Decimal(-67)]
