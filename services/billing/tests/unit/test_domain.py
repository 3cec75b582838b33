"""The billing rules without a database: the bill state machine, billing periods, proration and tax."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing import domain
from billing.domain import BillState, Period
from switchboard_kit.errors import BadRequest, Conflict
from switchboard_kit.money import Money


class TestChangeState:
    def test_the_current_state_is_a_no_op(self) -> None:
        for state in BillState:
            assert domain.change_state(state, state) is None

    @pytest.mark.parametrize(("current", "target"), [("new", "validated"), ("validated", "sent")])
    def test_a_client_takes_the_issuing_steps(self, current: str, target: str) -> None:
        assert domain.change_state(current, target) == domain.StateChange(BillState(target), None)

    @pytest.mark.parametrize("current", [s for s in BillState if s != BillState.ON_HOLD])
    def test_on_hold_from_any_state_remembers_it(self, current: BillState) -> None:
        assert domain.change_state(current, "onHold") == domain.StateChange(BillState.ON_HOLD, current)

    def test_a_hold_ends_in_the_state_it_interrupted(self) -> None:
        assert domain.change_state("onHold", "sent", "sent") == domain.StateChange(BillState.SENT, None)
        with pytest.raises(Conflict):
            domain.change_state("onHold", "validated", "sent")

    @pytest.mark.parametrize(
        ("current", "target"),
        [
            ("new", "sent"),  # skips validation
            ("sent", "partiallyPaid"),  # payments move it, not a client
            ("partiallyPaid", "settled"),
            ("settled", "sent"),
            ("sent", "new"),
        ],
    )
    def test_everything_else_is_a_conflict(self, current: str, target: str) -> None:
        with pytest.raises(Conflict):
            domain.change_state(current, target)

    def test_an_unknown_state_is_a_bad_request(self) -> None:
        with pytest.raises(BadRequest):
            domain.change_state("sent", "paid")
        with pytest.raises(BadRequest):
            domain.change_state("sent", None)


class TestPeriods:
    @pytest.mark.parametrize(
        ("day", "at", "start", "end"),
        [
            (1, date(2026, 11, 16), date(2026, 11, 1), date(2026, 12, 1)),
            (1, date(2026, 11, 1), date(2026, 11, 1), date(2026, 12, 1)),
            (20, date(2026, 11, 16), date(2026, 10, 20), date(2026, 11, 20)),
            (15, date(2026, 1, 3), date(2025, 12, 15), date(2026, 1, 15)),
            (28, date(2026, 12, 31), date(2026, 12, 28), date(2027, 1, 28)),
        ],
    )
    def test_the_period_holding_a_date(self, day: int, at: date, start: date, end: date) -> None:
        assert domain.period_containing(day, at) == Period(start, end)

    def test_cycle_days_stop_at_28(self) -> None:
        with pytest.raises(ValueError, match="1 to 28"):
            domain.period_containing(29, date(2026, 1, 1))


class TestProration:
    NOVEMBER = Period(date(2026, 11, 1), date(2026, 12, 1))  # 30 days

    def test_by_day_from_activation_to_the_period_end(self) -> None:
        assert domain.prorated(Money.of("40.00", "EUR"), self.NOVEMBER, date(2026, 11, 16)) == Money.of(
            "20.00", "EUR"
        )
        december = Period(date(2026, 12, 1), date(2027, 1, 1))  # 31 days: 10.00 * 11 / 31 = 3.548...
        assert domain.prorated(Money.of("10.00", "EUR"), december, date(2026, 12, 21)).amount == Decimal(
            "3.55"
        )

    def test_rounds_half_even(self) -> None:
        # 0.05 * 15 / 30 = 0.025: half-even gives 0.02 (half-up would give 0.03).
        assert domain.prorated(Money.of("0.05", "EUR"), self.NOVEMBER, date(2026, 11, 16)).amount == Decimal(
            "0.02"
        )
        assert domain.prorated(Money.of("0.07", "EUR"), self.NOVEMBER, date(2026, 11, 16)).amount == Decimal(
            "0.04"
        )

    def test_a_whole_period_is_the_whole_amount(self) -> None:
        assert domain.prorated(Money.of("9.99", "EUR"), self.NOVEMBER, date(2026, 10, 1)).amount == Decimal(
            "9.99"
        )


class TestTotals:
    def test_tax_is_per_line_and_the_total_is_the_sum_of_the_lines(self) -> None:
        # Each line 0.12 at 21% = 0.0252 -> 0.03; two lines 0.06 (tax on the total would be 0.05).
        lines = [domain.rate_amounts(Money.of("0.12", "EUR"), Decimal(21)) for _ in range(2)]
        assert lines[0]["appliedTax"][0]["taxAmount"] == {"unit": "EUR", "value": 0.03}
        totals = domain.bill_totals(lines, "EUR")
        assert totals.tax_excluded == Money.of("0.24", "EUR")
        assert totals.tax == Money.of("0.06", "EUR")
        assert totals.tax_included == Money.of("0.30", "EUR")
        assert totals.tax_items == [
            {
                "@type": "TaxItem",
                "taxCategory": "VAT",
                "taxRate": 21,
                "taxAmount": {"unit": "EUR", "value": 0.06},
            }
        ]

    def test_no_lines_is_zero_in_the_accounts_currency(self) -> None:
        totals = domain.bill_totals([], "JPY")
        assert totals.tax_included == Money.zero("JPY")
        assert totals.tax_items == []
