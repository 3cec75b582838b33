"""resources.input_document: nulls in typed attributes mean "absent", also when the body's bytes are given."""

from __future__ import annotations

import orjson

from switchboard_kit.bodies import input_document
from tmf_models import tmf622

BODY = {
    "description": None,
    "productOrderItem": [{"id": "1", "action": "add", "quantity": None, "productOffering": {"id": "X"}}],
}


def test_nulls_are_dropped_whether_or_not_the_raw_body_is_given() -> None:
    raw = orjson.dumps(BODY)
    model = tmf622.ProductOrder_Create.model_validate_json(raw)
    expected = {"productOrderItem": [{"id": "1", "action": "add", "productOffering": {"id": "X"}}]}
    assert input_document(model) == expected
    assert input_document(model, raw) == expected


def test_a_body_without_null_is_dumped_as_sent() -> None:
    body = {"productOrderItem": [{"id": "1", "action": "add", "productOffering": {"id": "X"}}], "x-ext": 1}
    raw = orjson.dumps(body)
    assert input_document(tmf622.ProductOrder_Create.model_validate_json(raw), raw) == body
