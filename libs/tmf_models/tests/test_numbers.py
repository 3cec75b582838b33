"""``type: number`` attributes (``Money.value``, ``taxRate``...): JSON numbers held as ``Decimal``."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from pydantic import ValidationError

from tmf_models import common, tmf622
from tmf_models._base import json_number


class TestMoneyValue:
    @pytest.mark.parametrize("text", ["19.99", "0.1", "0.3", "12.10", "1234567890123.45", "-0.5", "1e-7"])
    def test_is_the_decimal_the_json_said(self, text):
        money = common.Money.model_validate_json(f'{{"unit": "EUR", "value": {text}}}')
        assert isinstance(money.value, Decimal)
        assert money.value == Decimal(text)
        # Written back as the same JSON number, by pydantic and through orjson.
        assert Decimal(repr(orjson.loads(money.model_dump_json())["value"])) == Decimal(text)
        assert Decimal(repr(common.dump(money)["value"])) == Decimal(text)

    def test_no_drift_in_sums(self):
        a = common.Money.model_validate_json(b'{"value": 0.1}')
        b = common.Money.model_validate_json(b'{"value": 0.2}')
        assert a.value is not None and b.value is not None
        assert a.value + b.value == Decimal("0.3")

    def test_whole_numbers_stay_integers(self):
        assert common.dump(common.Money.model_validate_json(b'{"value": 10}')) == {"value": 10}
        assert common.dump_json(common.Money(value=Decimal("10.00"))) == b'{"value":10}'

    @pytest.mark.parametrize("value", ['"19.99"', "true", "null", "[]", '"NaN"'])
    def test_refuses_anything_but_a_number(self, value):
        if value == "null":  # optional attributes take null (merge-patch)
            assert common.Money.model_validate_json(f'{{"value": {value}}}').value is None
            return
        with pytest.raises(ValidationError, match="valid number"):
            common.Money.model_validate_json(f'{{"value": {value}}}')

    def test_python_input_takes_decimal_int_and_float(self):
        assert common.Money(value=Decimal("2.50")).value == Decimal("2.50")
        assert common.Money.model_validate({"value": 3}).value == Decimal(3)
        assert common.Money.model_validate({"value": 0.1}).value == Decimal("0.1")
        with pytest.raises(ValidationError):
            common.Money.model_validate({"value": "1.5"})
        with pytest.raises(ValidationError):
            common.Money.model_validate({"value": Decimal("NaN")})

    def test_json_schema_is_a_number(self):
        schema = common.Money.model_json_schema()
        assert schema["properties"]["value"]["anyOf"][0] == {"type": "number"}
        price = tmf622.Price.model_json_schema(mode="serialization")
        assert price["properties"]["taxRate"]["anyOf"][0] == {"type": "number"}


class TestJsonNumber:
    def test_refuses_what_a_double_cannot_hold(self):
        with pytest.raises(ValueError, match="double holds exactly"):
            json_number(Decimal("0.12345678901234567"))
        with pytest.raises(ValueError, match="finite"):
            json_number(Decimal("Infinity"))

    def test_default_of_quantity_is_written(self):
        assert common.Quantity().model_dump(mode="json")["amount"] == 1
